//! The frontend messages a client can send, as pgwire decodes them for the server:
//! at startup (SSL/GSS requests, startup packet, CancelRequest) and after it.
//!
//! pgwire 0.42.1 panics on many malformed messages (its decoders trust the counts and
//! lengths a message declares: Parse, Bind, CopyData, the startup packet; found by this
//! target). The server contains such a panic to the one connection
//! (`server/src/main.rs`; smoke test `a_malformed_message_ends_only_its_connection`), so
//! here a panic counts as a refusal, and what the target still looks for, under the
//! address sanitizer, is memory misuse, hangs and unbounded allocation.
#![no_main]

use bytes::BytesMut;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage};

libfuzzer_sys::fuzz_target!(init: {
    // A contained panic is an expected outcome: keep the default hook from printing each.
    std::panic::set_hook(Box::new(|_| {}));
}, |data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut context = DecodeContext::default();
    if mode & 1 == 1 {
        context.awaiting_frontend_ssl = false;
        context.awaiting_frontend_startup = false;
    }
    let mut buf = BytesMut::from(rest);
    // A message per round; a server would stop at the first error.
    for _ in 0..64 {
        let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            PgWireFrontendMessage::decode(&mut buf, &context)
        }));
        match decoded {
            Ok(Ok(Some(_))) => {
                context.awaiting_frontend_ssl = false;
                context.awaiting_frontend_startup = false;
            }
            Ok(Ok(None) | Err(_)) | Err(_) => break,
        }
    }
});
