//! The little CBOR (RFC 8949) this crate needs: reading the text strings out of an rpc-v2-cbor
//! request body (maps, arrays, text; everything else skipped) and writing a map of text
//! strings for a denial. Garbage input gives None, never a panic; nesting is bounded.

/// A decoded CBOR item, reduced to what request classification looks at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Text(String),
    Array(Vec<Item>),
    Map(Vec<(Item, Item)>),
    Other,
}

impl Item {
    /// The value of a text key in a map.
    pub(crate) fn get(&self, key: &str) -> Option<&Item> {
        match self {
            Item::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Item::Text(t) if t == key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text strings of an array.
    pub(crate) fn texts(&self) -> Vec<String> {
        match self {
            Item::Array(items) => items
                .iter()
                .filter_map(|item| match item {
                    Item::Text(t) => Some(t.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

const MAX_DEPTH: usize = 32;
const BREAK: u8 = 0xff;

/// Decodes one complete item (trailing bytes are ignored).
pub(crate) fn decode(bytes: &[u8]) -> Option<Item> {
    Reader { bytes, pos: 0 }.item(0)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, len: u64) -> Option<&[u8]> {
        let len = usize::try_from(len).ok()?;
        let end = self.pos.checked_add(len)?;
        let slice = self.bytes.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    /// The argument of a head byte's additional information (RFC 8949 §3).
    fn argument(&mut self, info: u8) -> Option<u64> {
        let width = match info {
            0..=23 => return Some(u64::from(info)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return None,
        };
        let raw = self.take(width)?;
        Some(raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn at_break(&mut self) -> bool {
        if self.bytes.get(self.pos) == Some(&BREAK) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn item(&mut self, depth: usize) -> Option<Item> {
        if depth > MAX_DEPTH {
            return None;
        }
        let head = self.byte()?;
        let (major, info) = (head >> 5, head & 0x1f);
        match major {
            0 | 1 => self.argument(info).map(|_| Item::Other),
            2 | 3 => {
                let raw = self.string(major, info)?;
                Some(match major {
                    3 => Item::Text(String::from_utf8_lossy(&raw).into_owned()),
                    _ => Item::Other,
                })
            }
            4 => self.array(info, depth),
            5 => self.map(info, depth),
            6 => {
                self.argument(info)?;
                self.item(depth + 1)
            }
            _ => match info {
                0..=23 => Some(Item::Other),
                24..=27 => self.argument(info).map(|_| Item::Other),
                _ => None,
            },
        }
    }

    /// A byte or text string's bytes, definite or indefinite (chunked) length.
    fn string(&mut self, major: u8, info: u8) -> Option<Vec<u8>> {
        if info != 31 {
            let len = self.argument(info)?;
            return self.take(len).map(<[u8]>::to_vec);
        }
        let mut out = Vec::new();
        while !self.at_break() {
            let head = self.byte()?;
            if head >> 5 != major || head & 0x1f == 31 {
                return None;
            }
            let len = self.argument(head & 0x1f)?;
            out.extend_from_slice(self.take(len)?);
        }
        Some(out)
    }

    fn array(&mut self, info: u8, depth: usize) -> Option<Item> {
        let mut items = Vec::new();
        if info == 31 {
            while !self.at_break() {
                items.push(self.item(depth + 1)?);
            }
        } else {
            for _ in 0..self.argument(info)? {
                items.push(self.item(depth + 1)?);
            }
        }
        Some(Item::Array(items))
    }

    fn map(&mut self, info: u8, depth: usize) -> Option<Item> {
        let mut entries = Vec::new();
        if info == 31 {
            while !self.at_break() {
                entries.push((self.item(depth + 1)?, self.item(depth + 1)?));
            }
        } else {
            for _ in 0..self.argument(info)? {
                entries.push((self.item(depth + 1)?, self.item(depth + 1)?));
            }
        }
        Some(Item::Map(entries))
    }
}

/// Encodes a definite-length map of text keys to text values.
pub(crate) fn encode_text_map(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    head(&mut out, 5, entries.len() as u64);
    for (key, value) in entries {
        for text in [key, value] {
            head(&mut out, 3, text.len() as u64);
            out.extend_from_slice(text.as_bytes());
        }
    }
    out
}

fn head(out: &mut Vec<u8>, major: u8, len: u64) {
    let major = major << 5;
    match len {
        0..=23 => out.push(major | len as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, len as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_text_map() {
        let long = "m".repeat(300);
        let bytes = encode_text_map(&[("__type", "AccessDeniedException"), ("message", &long)]);
        let item = decode(&bytes).expect("decodes");
        assert_eq!(
            item.get("__type"),
            Some(&Item::Text("AccessDeniedException".to_string()))
        );
        assert_eq!(item.get("message"), Some(&Item::Text(long)));
    }

    #[test]
    fn reads_an_indefinite_map_as_the_sdk_writes_it() {
        // {_ "eventArns": ["arn:a", "arn:b"], "locale": "en"}, then break.
        let mut body = vec![0xbf, 0x69];
        body.extend_from_slice(b"eventArns");
        body.extend_from_slice(&[0x82, 0x65]);
        body.extend_from_slice(b"arn:a");
        body.push(0x65);
        body.extend_from_slice(b"arn:b");
        body.push(0x66);
        body.extend_from_slice(b"locale");
        body.push(0x62);
        body.extend_from_slice(b"en");
        body.push(0xff);
        let item = decode(&body).expect("decodes");
        let arns = item.get("eventArns").map(Item::texts);
        assert_eq!(arns, Some(vec!["arn:a".to_string(), "arn:b".to_string()]));
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        for bytes in [
            &[0x9f][..],
            &[0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0xbf, 0x61],
            &[0x5f, 0x61, 0x61, 0xff],
            &[0xfc],
            &[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00],
        ] {
            assert_eq!(decode(bytes), None, "{bytes:?}");
        }
        let deep = vec![0x81; 10_000];
        assert_eq!(decode(&deep), None);
    }
}
