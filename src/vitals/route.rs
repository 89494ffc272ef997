//! Route templates: `/recipes/123?x=1` becomes `/recipes/:id`, so a page type is one row.

const MAX_SEGMENTS: usize = 32;

/// The path of `url_or_path` (absolute URL or path) with id-like segments replaced by
/// `:id`; no query string, no fragment, no trailing slash.
pub fn template(url_or_path: &str) -> String {
    let path = path_of(url_or_path);
    let segments: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .take(MAX_SEGMENTS)
        .map(|s| if is_id(s) { ":id" } else { s })
        .collect();
    format!("/{}", segments.join("/"))
}

/// The path part of an absolute URL or of a path, without query and fragment.
pub fn path_of(url_or_path: &str) -> &str {
    let s = url_or_path.trim();
    let s = match s.find("://") {
        Some(i) => {
            let rest = &s[i + 3..];
            rest.find(['/', '?', '#']).map_or("/", |j| &rest[j..])
        }
        None => s,
    };
    let end = s.find(['?', '#']).unwrap_or(s.len());
    &s[..end]
}

/// Numbers, UUIDs, hex digests and long opaque tokens are ids; words and slugs are not.
fn is_id(seg: &str) -> bool {
    let digits = seg.bytes().filter(u8::is_ascii_digit).count();
    if digits == seg.len() {
        return true;
    }
    if is_uuid(seg) {
        return true;
    }
    let hex = seg.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && seg.len() >= 8 && digits > 0 {
        return true;
    }
    let token = seg.bytes().all(|b| b.is_ascii_alphanumeric());
    token && seg.len() >= 20 && digits > 0
}

fn is_uuid(seg: &str) -> bool {
    let b = seg.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let cases = [
            ("/recipes/123", "/recipes/:id"),
            ("/recipes/123/", "/recipes/:id"),
            ("/recipes/123?ref=home#top", "/recipes/:id"),
            (
                "https://app.example/recipes/42/steps/7?x=1",
                "/recipes/:id/steps/:id",
            ),
            ("https://app.example", "/"),
            ("https://app.example?x=1", "/"),
            ("/", "/"),
            ("", "/"),
            (
                "/u/3f2b1c9e-8d4a-4b6e-9f1a-2c3d4e5f6a7b/plan",
                "/u/:id/plan",
            ),
            (
                "/commits/9fceb02d0ae598e95dc970b74767f19372d61af8",
                "/commits/:id",
            ),
            ("/s/V1StGXR8Z5jdHi6BmyTq9", "/s/:id"),
            ("/recipes/lemon-herb-chicken", "/recipes/lemon-herb-chicken"),
            ("/blog/2024-recap", "/blog/2024-recap"),
            ("/cafe", "/cafe"),
            ("/deadbeef", "/deadbeef"),
            ("/recipes/[id]", "/recipes/[id]"),
        ];
        for (input, want) in cases {
            assert_eq!(template(input), want, "{input}");
        }
    }

    proptest::proptest! {
        /// Arbitrary URLs and paths: a template, never a panic.
        #[test]
        fn any_url(s in "\\PC*") {
            let _ = template(&s);
            let p = path_of(&s);
            proptest::prop_assert!(s.contains(p) || p == "/");
        }
    }
}
