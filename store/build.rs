// Rebuild when a migration is added or edited: sqlx::migrate! embeds the
// migrations folders at compile time but does not watch them by itself.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
