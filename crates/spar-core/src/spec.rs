//! Game specifications: `name` or `name(key=value,key=value)`, OpenSpiel's style.
//!
//! The command line, configs and tabular-policy files all name games this way
//! (`kuhn`, `kuhn(hands=5)`, `connect_four(rows=6,columns=7)`). Parsing happens once, at
//! the edge; games read typed values through [`GameSpec::get`].

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A parsed game specification.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GameSpec {
    /// The game's short name.
    pub name: String,
    /// Parameters, sorted by key.
    pub params: BTreeMap<String, String>,
}

impl GameSpec {
    /// Parses `name` or `name(key=value,...)`. Whitespace around tokens is ignored.
    pub fn parse(text: &str) -> Result<Self> {
        let malformed = |reason: &str| Error::MalformedSpec {
            spec: text.to_string(),
            reason: reason.to_string(),
        };
        let text_trimmed = text.trim();
        let (name, rest) = match text_trimmed.find('(') {
            Some(open) => (&text_trimmed[..open], Some(&text_trimmed[open + 1..])),
            None => (text_trimmed, None),
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(malformed("the game name is empty"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(malformed(
                "a game name may contain only letters, digits, '_' and '-'",
            ));
        }
        let mut params = BTreeMap::new();
        if let Some(rest) = rest {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| malformed("missing closing ')'"))?;
            for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| malformed(&format!("parameter {pair:?} has no '='")))?;
                let (key, value) = (key.trim(), value.trim());
                if key.is_empty() || value.is_empty() {
                    return Err(malformed(&format!("parameter {pair:?} is incomplete")));
                }
                if params.insert(key.to_string(), value.to_string()).is_some() {
                    return Err(malformed(&format!("parameter {key:?} is given twice")));
                }
            }
        }
        Ok(Self {
            name: name.to_string(),
            params,
        })
    }

    /// Reads parameter `key` as a `T`, or `default` when absent.
    pub fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        match self.params.get(key) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|_| Error::BadParameter {
                game: self.name.clone(),
                key: key.to_string(),
                value: value.clone(),
                reason: format!("expected a value of type {}", std::any::type_name::<T>()),
            }),
        }
    }

    /// Fails when a parameter outside `known` was given, naming the accepted ones.
    pub fn check_known(&self, known: &[&str]) -> Result<()> {
        match self
            .params
            .keys()
            .find(|key| !known.contains(&key.as_str()))
        {
            None => Ok(()),
            Some(key) => Err(Error::BadParameter {
                game: self.name.clone(),
                key: key.clone(),
                value: self.params[key].clone(),
                reason: if known.is_empty() {
                    "this game takes no parameters".to_string()
                } else {
                    format!("unknown parameter; accepted: {}", known.join(", "))
                },
            }),
        }
    }
}

impl fmt::Display for GameSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.params.is_empty() {
            let pairs: Vec<String> = self
                .params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, "({})", pairs.join(","))?;
        }
        Ok(())
    }
}

impl FromStr for GameSpec {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_parameters() {
        let spec = GameSpec::parse(" kuhn( hands = 5 ,ante=1)").unwrap();
        assert_eq!(spec.name, "kuhn");
        assert_eq!(spec.get("hands", 1usize).unwrap(), 5);
        assert_eq!(spec.get("missing", 7usize).unwrap(), 7);
        assert_eq!(spec.to_string(), "kuhn(ante=1,hands=5)");
        assert_eq!(GameSpec::parse("leduc").unwrap().to_string(), "leduc");
    }

    #[test]
    fn rejects_malformed_specs() {
        for bad in [
            "",
            "(x=1)",
            "kuhn(hands=5",
            "kuhn(hands)",
            "kuhn(a=1,a=2)",
            "ku hn",
        ] {
            assert!(GameSpec::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let spec = GameSpec::parse("kuhn(hands=five)").unwrap();
        let err = spec.get("hands", 1usize).unwrap_err().to_string();
        assert!(err.contains("hands") && err.contains("five"), "{err}");
        let err = spec.check_known(&["players"]).unwrap_err().to_string();
        assert!(err.contains("accepted: players"), "{err}");
    }
}
