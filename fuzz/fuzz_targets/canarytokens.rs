//! canarytokens.org webhook payloads: never a panic, and a match only for
//! the token whose label carries the payload's token ID.
#![no_main]

use honeytrail_core::{NewToken, Token, TokenKind, TokenState};
use libfuzzer_sys::fuzz_target;

fn tokens() -> Vec<Token> {
    let labels = [("canarytoken".to_string(), "abc123".to_string())].into_iter().collect();
    let new = NewToken { access_key_id: "AKIARZPUZDIKAWS2LJNF".into(), labels, ..NewToken::default() };
    vec![Token {
        id: 1,
        access_key_id: new.access_key_id,
        kind: TokenKind::AwsImported,
        state: TokenState::Active,
        iam_user_name: None,
        iam_user_arn: None,
        account_id: None,
        source: None,
        memo: String::new(),
        labels: new.labels,
        has_secret: false,
        created_at: chrono_now(),
        retired_at: None,
        rotated_from: None,
    }]
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(event) = honeytrail_ingest::canarytokens::to_event(&payload, &tokens()) {
            assert_eq!(event.token_id, 1);
        }
    }
});
