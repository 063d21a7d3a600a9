//! Headers as the client keeps them (`(name, value)` pairs, looked up in any case), and
//! what keeps secrets out of reports: the secret headers, and JSON keys masked in bodies.

use serde_json::Value;

/// The headers whose values never appear in a report, whatever their case. A client adds
/// the header of [`Client::api_key`](crate::journey::Client::api_key) and any named with [`Client::secret_header`](crate::journey::Client::secret_header).
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// JSON keys whose values a recorded body shows as `"***"`: any key containing one of
/// these words, in any case.
const SECRET_JSON_KEYS: &[&str] = &["password", "secret", "token", "api_key", "apikey"];

/// The value of the first header named `name`, in any case.
pub(super) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `headers` with the values of secret headers replaced by `***`.
pub(super) fn redact_headers(
    headers: &[(String, String)],
    extra_secrets: &[String],
) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            let lower = k.to_ascii_lowercase();
            let secret = SECRET_HEADERS.contains(&lower.as_str())
                || extra_secrets.iter().any(|s| s.eq_ignore_ascii_case(k));
            let shown = if secret {
                // Keep the scheme of `Authorization: Bearer x`: it tells which auth was sent.
                match v.split_once(' ') {
                    Some((scheme, _))
                        if lower.ends_with("authorization")
                            && scheme.chars().all(|c| c.is_ascii_alphabetic()) =>
                    {
                        format!("{scheme} ***")
                    }
                    _ => "***".to_owned(),
                }
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect()
}

/// A body as text for a report: JSON with secret-named keys masked, else the text.
pub(super) fn redact_body(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            mask_json(&mut value);
            value.to_string()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let lower = k.to_ascii_lowercase();
                if SECRET_JSON_KEYS.iter().any(|s| lower.contains(s)) && !v.is_null() {
                    *v = Value::String("***".to_owned());
                } else {
                    mask_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}
