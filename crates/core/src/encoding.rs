//! Small text decodings that outside data needs, and the one way text from
//! outside (every CloudTrail field is written by whoever made the call) is
//! made safe to show on a terminal or in a single-line log.

/// A cell for a CSV file a person opens in a spreadsheet: text that would
/// start a formula (`=`, `+`, `-`, `@`, a tab or carriage return) is prefixed
/// with `'`, so a placement note or an audit detail written by someone else
/// cannot run `=HYPERLINK(…)` or `=cmd|…` on the responder's machine.
pub fn spreadsheet_cell(s: &str) -> std::borrow::Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{s}")),
        _ => std::borrow::Cow::Borrowed(s),
    }
}

/// Text with every control character (C0, DEL, C1, and the bidirectional
/// overrides that reorder what a reader sees) shown as a `\u{…}` escape, so
/// an attacker-written user agent cannot move the cursor, change colours,
/// rewrite earlier lines or fake new ones on a responder's terminal.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

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

    #[test]
    fn control_characters_never_reach_a_terminal() {
        use super::printable;
        assert_eq!(printable("aws-cli/2.15 Python/3.11"), "aws-cli/2.15 Python/3.11");
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\r\nFAKE LINE"), "x\\u{d}\\u{a}FAKE LINE");
        assert_eq!(printable("\u{202e}gpj.exe"), "\\u{202e}gpj.exe");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m");
        assert!(!printable("é ü 日本").contains('\\'));
    }

    #[test]
    fn spreadsheet_cells_never_start_a_formula() {
        use super::spreadsheet_cell;
        assert_eq!(spreadsheet_cell("=HYPERLINK(\"http://x\")"), "'=HYPERLINK(\"http://x\")");
        for s in ["+1", "-1+1", "@SUM(A1)", "\tx", "\rx"] {
            assert!(spreadsheet_cell(s).starts_with('\''), "{s:?}");
        }
        assert_eq!(spreadsheet_cell("maria-mbp"), "maria-mbp");
        assert_eq!(spreadsheet_cell(""), "");
    }
}
