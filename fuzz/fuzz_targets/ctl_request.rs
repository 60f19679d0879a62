//! The ctl socket's request decoder: any bytes a local client sends are
//! either refused with an error or decode to a request that re-encodes and
//! decodes to itself. Never a panic, never more than the cap read.
#![no_main]

use engine::control::ctl::{read_message_max, write_message, Request, MAX_REQUEST};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = data;
    // A connection may carry several requests back to back: read until the end or an error.
    for _ in 0..8 {
        match read_message_max::<Request>(&mut r, MAX_REQUEST) {
            Ok(Some(req)) => {
                let mut buf = Vec::new();
                write_message(&mut buf, &req).expect("a decoded request encodes");
                let again = engine::control::ctl::read_message::<Request>(&mut buf.as_slice()).expect("re-decodes");
                assert_eq!(again.as_ref(), Some(&req));
            }
            Ok(None) | Err(_) => break,
        }
    }
});
