//! Any string as a SCIM `filter` query parameter (RFC 7644 §3.4.2.2) or PATCH `path`: parsing
//! and compiling to SQL conditions must return a result or a `ScimError`, never panic or loop.

#![no_main]

use libfuzzer_sys::fuzz_target;
use teamgate::scim::ResourceType;
use teamgate::scim::filter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for rt in [ResourceType::User, ResourceType::Group] {
        let _ = filter::compile(rt, text);
    }
    let _ = filter::parse_path(text);
});
