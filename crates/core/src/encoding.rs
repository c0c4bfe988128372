//! Small text decodings that outside data needs.

/// Decodes `%XX` escapes, and `+` as a space when `plus_is_space`: S3 event
/// notifications URL-encode object keys that way, IAM URL-encodes policy
/// documents without the `+` rule. Malformed escapes are kept as they are.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes() {
        assert_eq!(percent_decode("AWSLogs/1/CloudTrail/a+b%3Dc.json.gz", true), "AWSLogs/1/CloudTrail/a b=c.json.gz");
        assert_eq!(percent_decode("%7B%22a%22%3A1%7D+", false), "{\"a\":1}+");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%é", false), "%zz%é");
    }
}
