//! The ctl socket's request decoder: any bytes a local client sends are
//! either refused with an error or decode to a request that re-encodes and
//! decodes to itself. Never a panic, never more than the cap read.
#![no_main]

use engine::control::ctl::{read_message_max, write_message, Request, MAX_REQUEST};
use engine::control::front::{decode_http, decode_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The front thread's decoder agrees with the stream decoder on a complete first request.
    let front = decode_request(data, true);
    let stream = read_message_max::<Request>(&mut &data[..], MAX_REQUEST);
    if let Ok(Some(req)) = &front {
        assert_eq!(stream.as_ref().ok().and_then(|r| r.as_ref()), Some(req));
    }
    // Byte by byte as a slow client sends it: never a panic, never a request before the last byte.
    if data.len() <= 512 {
        for i in 0..data.len() {
            if let Ok(Some(r)) = decode_request(&data[..i], false) {
                assert_eq!(front.as_ref().ok().and_then(|f| f.as_ref()), Some(&r), "a prefix decoded to another request");
                break;
            }
        }
    }
    let _ = decode_http(data, true, 8 << 10);
    let _ = decode_http(data, false, 8 << 10);
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
