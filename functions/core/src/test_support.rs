//! Helpers the unit tests share: the JSON generator of the never-panic properties, and the
//! request reader of the loopback HTTP servers.

use proptest::prelude::*;
use serde_json::Value;
use tokio::io::AsyncReadExt;

/// Arbitrary JSON whose object keys are mostly `fields` (an input's own field names) and whose
/// strings are often `strings` (its meaningful values): wrong types, huge numbers and deep
/// nesting where a parser expects something else.
pub fn json_under(
    fields: &'static [&'static str],
    strings: Vec<&'static str>,
) -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        3 => prop::sample::select(fields).prop_map(str::to_string),
        1 => any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        prop::sample::select(strings).prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Reads one HTTP/1.1 request (head, and the body its `content-length` announces) so that a
/// test server answers only once the client has sent everything.
pub async fn read_request(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap_or(0);
        request.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&request).to_lowercase();
        let done = text.split_once("\r\n\r\n").is_some_and(|(head, rest)| {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            rest.len() >= length
        });
        if n == 0 || done {
            return request;
        }
    }
}
