//! Small text decodings that outside data needs, and the one way text from
//! outside (every CloudTrail field is written by whoever made the call) is
//! made safe to show on a terminal or in a single-line log.

/// A cell for a CSV file a person opens in a spreadsheet: every hidden
/// character shown as an escape ([`printable`]), and text that would start
/// a formula (`=`, `+`, `-`, `@`, a tab or carriage return) prefixed with
/// `'`, so a placement note or an audit detail written by someone else can
/// neither run `=HYPERLINK(…)` or `=cmd|…` on the responder's machine nor
/// reorder or hide what the cell shows.
pub fn spreadsheet_cell(s: &str) -> std::borrow::Cow<'_, str> {
    let shown = printable(s);
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{shown}")),
        _ => shown,
    }
}

/// Whether `c` changes what a reader sees without being seen itself:
/// control characters (C0, DEL, C1), the line and paragraph separators, and
/// every format character (Unicode category Cf: the bidirectional marks,
/// embeddings, overrides and isolates that reorder a line; zero-width
/// spaces and joiners that make `i-\u{200b}0abc` look like an instance ID;
/// the byte-order mark, soft hyphen, invisible operators and tag
/// characters), and the fillers that render as blank.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{034f}'
                | '\u{061c}'
                | '\u{0600}'..='\u{0605}'
                | '\u{06dd}'
                | '\u{070f}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08e2}'
                | '\u{115f}'..='\u{1160}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

fn escaped(s: &str, keep: impl Fn(char) -> bool) -> std::borrow::Cow<'_, str> {
    let shown = |c: char| !hidden(c) || keep(c);
    if s.chars().all(shown) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if shown(c) {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Text on one line with every [`hidden`] character shown as a `\u{…}`
/// escape, so an attacker-written user agent cannot move the cursor, change
/// colours, rewrite earlier lines or fake new ones on a responder's
/// terminal, reorder what a reader sees, or pass for another value.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    escaped(s, |_| false)
}

/// [`printable`] for text shown on several lines (a web page, a mail
/// body): line feeds and tabs are kept, every other hidden character is
/// shown as an escape.
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    escaped(s, |c| c == '\n' || c == '\t')
}

/// Whether `s` holds a [`hidden`] character.
pub fn has_hidden(s: &str) -> bool {
    s.chars().any(hidden)
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
    fn invisible_and_reordering_characters_are_shown() {
        // A lookalike instance ID, a reversed file name, a zero-width joiner,
        // a byte-order mark, a tag character, a line separator.
        for (raw, shown) in [
            ("i-\u{200b}0abc", "i-\\u{200b}0abc"),
            ("\u{202e}fdp.exe", "\\u{202e}fdp.exe"),
            ("ad\u{200d}min", "ad\\u{200d}min"),
            ("\u{feff}root", "\\u{feff}root"),
            ("x\u{e0041}", "x\\u{e0041}"),
            ("a\u{2028}b", "a\\u{2028}b"),
            ("\u{2066}evil\u{2069}", "\\u{2066}evil\\u{2069}"),
            ("soft\u{ad}hyphen", "soft\\u{ad}hyphen"),
        ] {
            assert_eq!(printable(raw), shown, "{raw:?}");
            assert!(has_hidden(raw));
        }
        assert_eq!(visible("two\nlines\tand \u{200b}"), "two\nlines\tand \\u{200b}");
        assert!(!has_hidden("Ünïcödé 日本 😀"));
        assert_eq!(spreadsheet_cell("\u{202e}=1+1"), "\\u{202e}=1+1");
        assert_eq!(spreadsheet_cell("=a\u{202e}b"), "'=a\\u{202e}b");
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
