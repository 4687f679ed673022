//! The little JSON the template needs, with the standard library only: a validator, one
//! top-level string field, and quoting. A real driver would likely use serde_json; this keeps
//! the template buildable offline with no crates.

/// True when `text` is one JSON object (whitespace around it allowed).
pub fn is_object(text: &[u8]) -> bool {
    let mut reader = Reader { text, at: 0 };
    reader.space();
    if reader.peek() != Some(b'{') || !reader.value(0) {
        return false;
    }
    reader.space();
    reader.at == text.len()
}

/// The value of the top-level string field `name` of an object, unescaped.
pub fn string_field(text: &[u8], name: &str) -> Option<String> {
    let mut reader = Reader { text, at: 0 };
    reader.space();
    if !reader.eat(b'{') {
        return None;
    }
    loop {
        reader.space();
        let key = reader.string()?;
        reader.space();
        if !reader.eat(b':') {
            return None;
        }
        reader.space();
        if key == name && reader.peek() == Some(b'"') {
            return reader.string();
        }
        if !reader.value(1) {
            return None;
        }
        reader.space();
        if !reader.eat(b',') {
            return None;
        }
    }
}

/// `text` as a JSON string literal.
pub fn quote(text: &str) -> String {
    format!("\"{}\"", escape(text))
}

/// `text` escaped for inside a JSON string literal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// One value; nesting is bounded so hostile input cannot exhaust the stack.
    fn value(&mut self, depth: usize) -> bool {
        if depth > 64 {
            return false;
        }
        match self.peek() {
            Some(b'{') => self.container(b'}', true, depth),
            Some(b'[') => self.container(b']', false, depth),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.word(b"true"),
            Some(b'f') => self.word(b"false"),
            Some(b'n') => self.word(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn container(&mut self, close: u8, keyed: bool, depth: usize) -> bool {
        self.at += 1;
        self.space();
        if self.eat(close) {
            return true;
        }
        loop {
            self.space();
            if keyed {
                if self.string().is_none() {
                    return false;
                }
                self.space();
                if !self.eat(b':') {
                    return false;
                }
                self.space();
            }
            if !self.value(depth + 1) {
                return false;
            }
            self.space();
            if self.eat(close) {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn word(&mut self, word: &[u8]) -> bool {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn number(&mut self) -> bool {
        let start = self.at;
        self.eat(b'-');
        let digits = |reader: &mut Reader| {
            let from = reader.at;
            while matches!(reader.peek(), Some(b'0'..=b'9')) {
                reader.at += 1;
            }
            reader.at > from
        };
        if !digits(self) {
            return false;
        }
        if self.eat(b'.') && !digits(self) {
            return false;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            if !digits(self) {
                return false;
            }
        }
        self.at > start
    }

    /// A string literal, unescaped (`\u` escapes with surrogate pairs).
    fn string(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let byte = self.peek()?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let escaped = self.peek()?;
                    self.at += 1;
                    let simple = match escaped {
                        b'"' => Some(b'"'),
                        b'\\' => Some(b'\\'),
                        b'/' => Some(b'/'),
                        b'b' => Some(8),
                        b'f' => Some(12),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'u' => None,
                        _ => return None,
                    };
                    match simple {
                        Some(byte) => out.push(byte),
                        None => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return None;
                                }
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return None;
                                }
                                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                            }
                            let c = char::from_u32(code)?;
                            let mut buffer = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                        }
                    }
                }
                0..=0x1f => return None,
                _ => out.push(byte),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        self.at += 4;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }
}
