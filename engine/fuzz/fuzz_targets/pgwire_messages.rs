//! The frontend messages a client can send, as pgwire decodes them for the server:
//! at startup (SSL/GSS requests, startup packet, CancelRequest) and after it. Whatever
//! the bytes, decoding ends in messages, "need more bytes" or an error, never a panic.
#![no_main]

use bytes::BytesMut;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
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
        match PgWireFrontendMessage::decode(&mut buf, &context) {
            Ok(Some(_)) => {
                context.awaiting_frontend_ssl = false;
                context.awaiting_frontend_startup = false;
            }
            Ok(None) | Err(_) => break,
        }
    }
});
