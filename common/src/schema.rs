//! OpenAPI schemas of the types that travel as checked strings: the hub's
//! document (`GET /v1/openapi.json`) states the same limits the parsers enforce.
use crate::api::HashList;
use crate::path::{MAX_COMPONENT_BYTES, MAX_PATH_BYTES};
use crate::{ContentHash, RelPath};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// What no path may hold: the separators, C0/C1 controls and the
/// bidirectional marks `path::validate_name` refuses (ECMA-262 syntax).
const FORBIDDEN: &str = r"/\\\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069";

/// A pattern for `RelPath`: components that are neither `.` nor `..` and
/// hold no forbidden character, joined by single `/`s. Byte lengths per name
/// and Unicode lookalikes are beyond a pattern; the parser checks those.
fn path_pattern() -> String {
    let x = FORBIDDEN;
    let name = format!(r"(?:[^.{x}][^{x}]*|\.[^.{x}][^{x}]*|\.\.[^{x}]+)");
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

impl PartialSchema for HashList {
    fn schema() -> RefOr<Schema> {
        string("Chunk hashes, 32 bytes each, concatenated and base64-encoded.".into())
            .format(Some(SchemaFormat::Custom("byte".into())))
            .content_encoding("base64")
            .into()
    }
}
impl ToSchema for HashList {}

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

    fn pattern() -> regex::Regex {
        // The ECMA `\uXXXX` escapes read the same in the regex crate.
        regex::Regex::new(&path_pattern()).unwrap()
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

    proptest::proptest! {
        /// Over an alphabet of the characters that matter (and no lookalikes or
        /// long names, which only the parser sees), pattern and parser agree.
        #[test]
        fn the_path_pattern_agrees_with_the_parser(s in "[a./\\\\\x00\x01\x7f é\u{202e}\u{2067}]{0,12}") {
            proptest::prop_assert_eq!(pattern().is_match(&s), RelPath::parse(&s).is_ok(), "{:?}", s);
        }
    }
}
