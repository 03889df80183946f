//! `node-config`: the one way our guest nodes read their manifest `config` (handed to `init` as
//! JSON). A plain library crate, not a component: every node links it, so "" means `{}`, a
//! non-object is refused, and (with `#[serde(deny_unknown_fields)]` on the node's struct) a
//! misspelt key is an error in every node alike. `build-plugins.sh` skips library crates.

/// Parses the node's config: a JSON object ("" counts as `{}`).
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    match serde_json::from_str::<serde_json::Value>(text).map_err(|e| e.to_string())? {
        object @ serde_json::Value::Object(_) => {
            serde_json::from_value(object).map_err(|e| e.to_string())
        }
        other => Err(format!("config must be a JSON object, got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct C {
        #[serde(default)]
        x: u32,
    }

    #[test]
    fn empty_is_an_empty_object_and_non_objects_or_unknown_keys_are_refused() {
        assert_eq!(parse_config::<C>(""), Ok(C { x: 0 }));
        assert_eq!(parse_config::<C>(r#"{"x":3}"#), Ok(C { x: 3 }));
        assert!(parse_config::<C>("[1]").is_err());
        assert!(parse_config::<C>(r#"{"y":1}"#).is_err());
        assert!(parse_config::<C>("{oops").is_err());
    }
}
