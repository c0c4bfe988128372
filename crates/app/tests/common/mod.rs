//! What the app's tests share: a fresh SQLite store holding one token.

use honeytrail_core::{NewToken, SecretBox, Token};
use honeytrail_store::Store;

/// A store in a temporary directory (kept alive by the returned guard) with
/// one imported token of key `key`.
pub async fn store_with_token(key: &str) -> (tempfile::TempDir, Store, Token) {
    let (dir, url) = honeytrail_testkit::sqlite_database();
    let data_key = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
    let store = Store::open(&url, Some(data_key)).await.unwrap();
    let token =
        store.insert_token(&NewToken { access_key_id: key.into(), ..NewToken::default() }, &[], &[]).await.unwrap();
    (dir, store, token)
}
