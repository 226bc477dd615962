//! Remembered consent: which scopes a user let a client have.

use crate::clients::Client;
use crate::scope::Scopes;
use crate::store::{Store, StoreResult};

/// Whether `user_id` need not be asked before `client` gets `scope`: the
/// client is first-party, or the user already granted every scope in it.
pub async fn covers(
    store: &dyn Store,
    user_id: &str,
    client: &Client,
    scope: &Scopes,
) -> StoreResult<bool> {
    if client.first_party {
        return Ok(true);
    }
    let Some(granted) = store.consent(user_id, &client.id).await? else {
        return Ok(false);
    };
    // A stored scope that no longer parses grants nothing.
    Ok(Scopes::parse(&granted.scope).is_ok_and(|granted| scope.is_subset_of(&granted)))
}
