//! HTML escaping, once, for every page Lifeboat writes: the report page, the trend page, the
//! approval callback's confirmation pages (and the local IAM gate's XML errors). Text from
//! outside Lifeboat (workspace and job names, a trigger's description, a comment) is always
//! passed through [`escape`] before it reaches a page; it escapes all five characters that can
//! end a text node or an attribute value, so one function serves both.

/// Escapes `&`, `<`, `>`, `"` and `'` (element content and attribute values, single- or
/// double-quoted).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn every_character_that_can_end_text_or_an_attribute_is_escaped() {
        let table = [
            ("plain", "plain"),
            ("a & b", "a &amp; b"),
            ("<script>", "&lt;script&gt;"),
            (r#"x" onmouseover="y"#, "x&quot; onmouseover=&quot;y"),
            ("it's", "it&#39;s"),
            ("&amp;", "&amp;amp;"),
            ("", ""),
        ];
        for (raw, want) in table {
            assert_eq!(escape(raw), want, "{raw}");
        }
    }
}
