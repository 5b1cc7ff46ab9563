//! Form- or query-encoded parameters (RFC 6749 §3.1, §3.2), remembering which names were
//! repeated: a repeated parameter is an error everywhere in OAuth.

use std::collections::HashMap;

pub struct Params {
    values: HashMap<String, String>,
    repeated: Vec<String>,
}

impl Params {
    pub fn parse(raw: &[u8]) -> Self {
        let mut values = HashMap::new();
        let mut repeated = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if values.insert(k.to_string(), v.into_owned()).is_some() {
                repeated.push(k.into_owned());
            }
        }
        Self { values, repeated }
    }

    /// RFC 6749 §3.1: a parameter sent without a value is treated as omitted.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn is_repeated(&self, name: &str) -> bool {
        self.repeated.iter().any(|r| r == name)
    }

    /// RFC 6749 §3.1: request parameters must not be included more than once.
    pub fn any_repeated(&self) -> bool {
        !self.repeated.is_empty()
    }
}
