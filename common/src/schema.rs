//! OpenAPI schemas of the types that travel as checked strings: the hub's
//! document (`GET /v1/openapi.json`) states the same limits the parsers enforce.
use crate::api::HashList;
use crate::path::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use crate::xattrs::{Xattrs, MAX_NAME, MAX_TOTAL};
use crate::{ContentHash, RelPath};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// What no path may hold: the separators, C0/C1 controls and the
/// bidirectional marks `path::validate_name` refuses (ECMA-262 syntax).
const FORBIDDEN: &str = r"/\\\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069";

/// A pattern for `RelPath`: names that are neither `.` nor `..`, hold no
/// forbidden character and are at most 255 characters, joined by single `/`s.
/// Names of more bytes than characters, and Unicode lookalikes, are beyond a
/// pattern; the parser checks those.
fn path_pattern() -> String {
    let x = FORBIDDEN;
    let name = format!(r"(?:[^.{x}][^{x}]{{0,254}}|\.[^.{x}][^{x}]{{0,253}}|\.\.[^{x}]{{1,253}})");
    format!("^{name}(?:/{name})*$")
}

fn string(description: String) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description))
}

impl PartialSchema for RelPath {
    fn schema() -> RefOr<Schema> {
        string(format!(
            "A path inside the synced tree: relative, '/'-separated, no empty, '.' or '..' components, \
             no NUL, backslash or control characters, each name at most {MAX_COMPONENT_BYTES} bytes, \
             the whole at most {MAX_PATH_BYTES} bytes."
        ))
        .min_length(Some(1))
        .max_length(Some(MAX_PATH_BYTES))
        .pattern(Some(path_pattern()))
        .examples(["docs/notes.txt"])
        .into()
    }
}
impl ToSchema for RelPath {}

impl PartialSchema for ContentHash {
    fn schema() -> RefOr<Schema> {
        string("A BLAKE3 hash: 64 lowercase hex digits.".into())
            .pattern(Some("^[0-9a-f]{64}$"))
            .examples(["af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"])
            .into()
    }
}
impl ToSchema for ContentHash {}

/// Canonical base64 of a whole number of 32-byte hashes: 96 bytes (three
/// hashes) make 128 characters; one or two left over end in `=` or `==`, with
/// the unused low bits of the last character zero.
const HASH_LIST_PATTERN: &str =
    r"^(?:[A-Za-z0-9+/]{128})*(?:[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=|[A-Za-z0-9+/]{85}[AQgw]==)?$";

impl PartialSchema for HashList {
    fn schema() -> RefOr<Schema> {
        string("Chunk hashes, 32 bytes each, concatenated and base64-encoded.".into())
            .pattern(Some(HASH_LIST_PATTERN))
            .format(Some(SchemaFormat::Custom("byte".into())))
            .content_encoding("base64")
            .into()
    }
}
impl ToSchema for HashList {}

impl PartialSchema for Xattrs {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(format!(
                "Extended attributes: name (at most {MAX_NAME} bytes; in requests, 'user.' names only) to \
                 base64 value; names and values of one entry take at most {MAX_TOTAL} bytes."
            )))
            .additional_properties(Some(string("The value, base64.".into()).content_encoding("base64")))
            .into()
    }
}
impl ToSchema for Xattrs {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_schemas_state_the_parsers_limits() {
        let json = serde_json::to_value(RelPath::schema()).unwrap();
        assert_eq!(json["type"], "string");
        assert_eq!(json["maxLength"], MAX_PATH_BYTES);
        let hash = serde_json::to_value(ContentHash::schema()).unwrap();
        let example = hash["examples"][0].as_str().unwrap();
        assert!(example.parse::<ContentHash>().is_ok(), "the documented example must parse");
        assert_eq!(serde_json::to_value(HashList::schema()).unwrap()["contentEncoding"], "base64");
    }

    fn pattern() -> &'static regex::Regex {
        // The ECMA `\uXXXX` escapes read the same in the regex crate.
        static RE: std::sync::LazyLock<regex::Regex> =
            std::sync::LazyLock::new(|| regex::Regex::new(&path_pattern()).unwrap());
        &RE
    }

    #[test]
    fn the_path_pattern_agrees_with_the_parser_on_examples() {
        let re = pattern();
        for ok in ["a", "docs/notes.txt", ".hidden", "...", "..a", "a..", "a/.b/c", "é/ü"] {
            assert!(re.is_match(ok) && RelPath::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [".", "..", "a/../b", "/a", "a/", "a//b", "a\\b", "a\0b", "a\tb", "a\u{85}", "x\u{202e}y", "./a"] {
            assert!(!re.is_match(bad) && RelPath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn encoded_hash_lists_match_their_pattern() {
        let re = regex::Regex::new(HASH_LIST_PATTERN).unwrap();
        for n in 0..7u8 {
            let hashes: Vec<ContentHash> = (0..n).map(|i| ContentHash::of(&[i])).collect();
            let list = HashList::encode(&hashes);
            assert!(re.is_match(&list.0), "{n} hashes: {}", list.0);
        }
        assert!(!re.is_match("MA=="), "one byte is no hash");
    }

    proptest::proptest! {
        /// Whatever the pattern admits decodes to whole hashes (without the
        /// anchors, which proptest does not take: it makes whole strings anyway).
        #[test]
        fn hash_lists_the_pattern_admits_decode(s in &HASH_LIST_PATTERN[1..HASH_LIST_PATTERN.len() - 1]) {
            let hashes = HashList(s.clone()).decode();
            proptest::prop_assert!(hashes.is_ok(), "{:?}: {:?}", s, hashes);
        }

        /// Over an alphabet of the characters that matter (and no lookalikes or
        /// long names, which only the parser sees), pattern and parser agree.
        #[test]
        fn the_path_pattern_agrees_with_the_parser(s in "[a./\\\\\x00\x01\x7f é\u{202e}\u{2067}]{0,12}") {
            proptest::prop_assert_eq!(pattern().is_match(&s), RelPath::parse(&s).is_ok(), "{:?}", s);
        }
    }
}
