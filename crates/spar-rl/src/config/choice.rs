//! Config values that are one of a fixed set of names ([`Choice`]).
//!
//! A field of such a type is written `#[serde(with = "choice")]` (or `choice::optional`, or
//! `choice::or_none`): it reads and writes the value's name as a TOML string, exactly the
//! string the config held before it was typed, and an unknown name is an error that lists the
//! accepted ones (`"smple" is not one of sample, legal`; the config's parser puts the key in
//! front). The same lists make the accepted-values paragraph of `spar train --help`
//! ([`TrainConfig::choices`](super::TrainConfig::choices)).
//!
//! The types live with the code that reads them (`spar_core::View`, [`Decode`],
//! [`LrSchedule`], ...); their names are given here, once, and a test checks that every
//! type's own `FromStr` agrees with them.

use serde::{de::Error as _, Deserialize, Deserializer, Serializer};
use spar_core::{ProtocolKind, View};

use crate::objectives::advantages::EstimatorKind;
use crate::objectives::estimators::Estimator;
use crate::objectives::losses::KlEstimator;
use crate::objectives::rae::RaeUpdate;
use crate::rollout::prompt::PromptStyle;
use crate::rollout::Decode;
use crate::trainer::LrSchedule;

/// A value of a config key with a fixed set of accepted names.
pub trait Choice: Copy + PartialEq + Sized + 'static {
    /// Every value, in the order help and errors list them.
    const ALL: &'static [Self];

    /// The value's name in configs (and in the files written from them).
    fn name(self) -> &'static str;
}

/// The accepted names of `T`, comma separated (`sample, legal`).
pub fn names<T: Choice>() -> String {
    let names: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
    names.join(", ")
}

/// The value of `T` named `text`; the error lists the accepted names.
pub fn parse<T: Choice>(text: &str) -> Result<T, String> {
    T::ALL
        .iter()
        .copied()
        .find(|v| v.name() == text)
        .ok_or_else(|| format!("{text:?} is not one of {}", names::<T>()))
}

/// serde: the value as its name.
pub fn serialize<T: Choice, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(value.name())
}

/// serde: the value from its name.
pub fn deserialize<'de, T: Choice, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse(&text).map_err(D::Error::custom)
}

/// `Option<T>` fields where absent means unset (`[opponents]`): the name when set, nothing
/// when not.
pub mod optional {
    use super::*;

    /// serde: the name, or nothing.
    pub fn serialize<T: Choice, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => serializer.serialize_some(v.name()),
            None => serializer.serialize_none(),
        }
    }

    /// serde: the value from its name.
    pub fn deserialize<'de, T: Choice, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

/// `Option<T>` fields where `"none"` is one of the names (`algorithm.kl = "none"`).
pub mod or_none {
    use super::*;

    /// The name of `None`.
    pub const NONE: &str = "none";

    /// The name of `value` (`none` for `None`).
    pub fn name<T: Choice>(value: Option<T>) -> &'static str {
        value.map_or(NONE, Choice::name)
    }

    /// The accepted names: `none`, then those of `T`.
    pub fn names<T: Choice>() -> String {
        format!("{NONE}, {}", super::names::<T>())
    }

    /// The value named `text` (`none` is `None`); the error lists the accepted names.
    pub fn parse<T: Choice>(text: &str) -> Result<Option<T>, String> {
        if text == NONE {
            return Ok(None);
        }
        super::parse::<T>(text)
            .map(Some)
            .map_err(|_| format!("{text:?} is not one of {}", names::<T>()))
    }

    /// serde: the name, `none` for `None`.
    pub fn serialize<T: Choice, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(name(*value))
    }

    /// serde: the value from its name.
    pub fn deserialize<'de, T: Choice, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse(&text).map_err(D::Error::custom)
    }
}

/// `game.invalid_move_rule`: `spiral`, `textarena` or `retry:N` ([`InvalidMoveRule`], a
/// family rather than a fixed set), through its own `Display` and `FromStr`.
pub mod invalid_move_rule {
    use spar_core::InvalidMoveRule;

    use super::*;

    /// The accepted forms (`spiral, textarena, retry:N`).
    pub fn names() -> String {
        InvalidMoveRule::FORMS.join(", ")
    }

    /// serde: the rule as its name (`retry:2`).
    pub fn serialize<S: Serializer>(
        value: &InvalidMoveRule,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    /// serde: the rule from its name.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<InvalidMoveRule, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| {
            D::Error::custom(format!(
                "{text:?} is not one of {} (N a non-negative integer)",
                names()
            ))
        })
    }
}

impl Choice for ProtocolKind {
    const ALL: &'static [Self] = &ProtocolKind::ALL;

    fn name(self) -> &'static str {
        ProtocolKind::name(self)
    }
}

impl Choice for View {
    const ALL: &'static [Self] = &View::ALL;

    fn name(self) -> &'static str {
        View::name(self)
    }
}

impl Choice for PromptStyle {
    const ALL: &'static [Self] = &[
        PromptStyle::Auto,
        PromptStyle::Chat,
        PromptStyle::Template,
        PromptStyle::Raw,
    ];

    fn name(self) -> &'static str {
        match self {
            PromptStyle::Auto => "auto",
            PromptStyle::Chat => "chat",
            PromptStyle::Template => "template",
            PromptStyle::Raw => "raw",
        }
    }
}

impl Choice for Decode {
    const ALL: &'static [Self] = &[Decode::Sample, Decode::Legal];

    fn name(self) -> &'static str {
        match self {
            Decode::Sample => "sample",
            Decode::Legal => "legal",
        }
    }
}

impl Choice for RaeUpdate {
    const ALL: &'static [Self] = &[RaeUpdate::PerGame, RaeUpdate::BatchMean];

    fn name(self) -> &'static str {
        match self {
            RaeUpdate::PerGame => "per_game",
            RaeUpdate::BatchMean => "batch_mean",
        }
    }
}

impl Choice for LrSchedule {
    const ALL: &'static [Self] = &[LrSchedule::Constant, LrSchedule::Linear, LrSchedule::Cosine];

    fn name(self) -> &'static str {
        match self {
            LrSchedule::Constant => "constant",
            LrSchedule::Linear => "linear",
            LrSchedule::Cosine => "cosine",
        }
    }
}

impl Choice for KlEstimator {
    const ALL: &'static [Self] = &[KlEstimator::K1, KlEstimator::K2, KlEstimator::K3];

    fn name(self) -> &'static str {
        match self {
            KlEstimator::K1 => "k1",
            KlEstimator::K2 => "k2",
            KlEstimator::K3 => "k3",
        }
    }
}

impl Choice for Estimator {
    const ALL: &'static [Self] = &Estimator::ALL;

    fn name(self) -> &'static str {
        Estimator::name(self)
    }
}

impl Choice for EstimatorKind {
    const ALL: &'static [Self] = &EstimatorKind::ALL;

    fn name(self) -> &'static str {
        EstimatorKind::name(self)
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::str::FromStr;

    use super::*;

    /// Every name parses back to its value through the type's own `FromStr` (the one the CLI
    /// flags and `prompting.json` go through), and the names are distinct.
    fn agrees_with_from_str<T: Choice + Debug + FromStr>() {
        for &v in T::ALL {
            assert_eq!(parse::<T>(v.name()), Ok(v));
            assert!(
                v.name().parse::<T>().ok() == Some(v),
                "{v:?}: FromStr disagrees on {:?}",
                v.name()
            );
        }
        let mut seen: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), T::ALL.len(), "duplicate names");
    }

    #[test]
    fn names_agree_with_each_types_own_parser() {
        agrees_with_from_str::<ProtocolKind>();
        agrees_with_from_str::<View>();
        agrees_with_from_str::<PromptStyle>();
        agrees_with_from_str::<Decode>();
        agrees_with_from_str::<LrSchedule>();
        agrees_with_from_str::<KlEstimator>();
        agrees_with_from_str::<Estimator>();
        let rules: Vec<&str> = RaeUpdate::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(rules, ["per_game", "batch_mean"]);
    }

    #[test]
    fn unknown_names_list_the_accepted_ones() {
        assert_eq!(
            parse::<Decode>("smple"),
            Err("\"smple\" is not one of sample, legal".to_string())
        );
        assert_eq!(or_none::parse::<KlEstimator>("none"), Ok(None));
        assert_eq!(
            or_none::parse::<KlEstimator>("k2"),
            Ok(Some(KlEstimator::K2))
        );
        assert_eq!(
            or_none::parse::<KlEstimator>("k4"),
            Err("\"k4\" is not one of none, k1, k2, k3".to_string())
        );
    }
}
