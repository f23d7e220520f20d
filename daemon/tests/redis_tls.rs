//! The Redis store over TLS (`rediss://`) with a verified certificate.
//!
//! A test binary of its own: it points `SSL_CERT_FILE` (read by the
//! `redis` crate's rustls root store) at a test CA for the whole process.

use herald::store::Store;
use herald::store::redis::{RedisSettings, RedisStore};
use herald_test_support::RedisServer;

#[test]
fn the_redis_store_works_over_tls_with_a_verified_certificate() {
    let server = RedisServer::start_tls();
    // SAFETY: this binary has this one test; no other thread reads the
    // environment while it is changed, before the runtime starts.
    unsafe { std::env::set_var("SSL_CERT_FILE", server.ca_file()) };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = RedisStore::connect(RedisSettings {
            url: server.url(),
            key_prefix: "herald".to_owned(),
        })
        .await
        .unwrap();
        store.ping().await.expect("a TLS ping");
        assert!(store.appendonly_enabled().await.unwrap());
        let at = chrono::DateTime::UNIX_EPOCH;
        store.advance_cursor("weekly", at).await.unwrap();
        assert_eq!(store.cursor("weekly").await.unwrap(), Some(at));
    });
}
