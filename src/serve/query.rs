//! `application/x-www-form-urlencoded` pairs, for query strings and the page's forms.

/// The pairs of `text` (`a=1&b=x%20y`), decoded; malformed escapes are kept as written.
pub(crate) fn pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The first value of `key` in `pairs`.
pub(crate) fn get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
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
    fn pairs_are_decoded() {
        let p = pairs("source=feature%2Flogin&target=kars-dev&x=a+b&bad=%zz&end=%4");
        assert_eq!(get(&p, "source"), Some("feature/login"));
        assert_eq!(get(&p, "target"), Some("kars-dev"));
        assert_eq!(get(&p, "x"), Some("a b"));
        assert_eq!(get(&p, "bad"), Some("%zz"));
        assert_eq!(get(&p, "end"), Some("%4"));
    }
}
