//! `[sign_in]` and `[branding]` in the configuration.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Browser sessions and the authorization endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    /// A browser session unused this long ends (the next request asks the
    /// user to sign in again).
    #[serde(with = "humantime_serde")]
    pub session_idle_ttl: Duration,
    /// A browser session ends this long after sign-in, however active.
    #[serde(with = "humantime_serde")]
    pub session_absolute_ttl: Duration,
}

impl Default for SignInConfig {
    fn default() -> Self {
        SignInConfig {
            session_idle_ttl: Duration::from_secs(12 * 3600),
            session_absolute_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What the hosted pages look like, changeable without a rebuild: read
/// once at start and served by Sigil itself (the pages load no external
/// asset).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Branding {
    /// Shown in page titles and headings.
    pub product_name: String,
    /// A PNG, SVG, JPEG or WebP file shown above every form.
    pub logo_file: Option<PathBuf>,
    /// A stylesheet loaded after the default one, so it can override it.
    pub stylesheet_file: Option<PathBuf>,
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            product_name: "Sigil".into(),
            logo_file: None,
            stylesheet_file: None,
        }
    }
}

/// The media type of a logo file, by its extension (`None`: not an image
/// the pages can show).
pub fn logo_type(path: &std::path::Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => return None,
    })
}
