//! Zero-shot prompts: per class, positive and negative texts whose embeddings the caller
//! averages (CheXzero: encode, L2-normalise, average over templates, renormalise; then
//! `p = exp(pos) / (exp(pos) + exp(neg))`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TextError};
use crate::template::{ClassCase, Template};

/// A set of (positive, negative) template pairs plus alternative names per class.
///
/// [`prompts`](Self::prompts) expands every name of a class (the name itself, then its aliases)
/// with every pair, so all texts of one side describe the same finding and can be averaged.
///
/// In a TOML config: `pairs = [["{}", "no {}"]]`, optionally `aliases = { "pleural effusion" =
/// ["effusion"] }` (keys lowercase), `case`, and `complement = ["normal"]`: classes meaning
/// "no finding", scored against the other classes' positive prompts instead of their negative
/// prompt (see [`is_complement`](Self::is_complement)). At least one pair is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PromptSetConfig")]
pub struct PromptSet {
    pairs: Vec<(Template, Template)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    aliases: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    case: ClassCase,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    complement: Vec<String>,
}

/// Classes that name the absence of every finding (CXR-LT's "Normal", CheXpert / NIH's "No
/// Finding"): [`PromptSet::present_absent`] scores them against the other classes.
pub const NO_FINDING_CLASSES: [&str; 2] = ["normal", "no finding"];

/// The unchecked form of [`PromptSet`] read from a config.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptSetConfig {
    pairs: Vec<(Template, Template)>,
    #[serde(default)]
    aliases: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    case: ClassCase,
    #[serde(default)]
    complement: Vec<String>,
}

impl TryFrom<PromptSetConfig> for PromptSet {
    type Error = TextError;

    fn try_from(raw: PromptSetConfig) -> Result<Self> {
        if raw.pairs.is_empty() {
            return Err(TextError::NoTemplates);
        }
        let mut set = Self {
            pairs: raw.pairs,
            aliases: BTreeMap::new(),
            case: raw.case,
            complement: Vec::new(),
        };
        for class_name in &raw.complement {
            set = set.with_complement(class_name);
        }
        for (class_name, aliases) in &raw.aliases {
            for alias in aliases {
                set = set.with_alias(class_name, alias);
            }
        }
        Ok(set)
    }
}

impl PromptSet {
    /// A set from explicit `(positive, negative)` templates, each with one `{}`.
    pub fn new(pairs: &[(&str, &str)]) -> Result<Self> {
        if pairs.is_empty() {
            return Err(TextError::NoTemplates);
        }
        let pairs = pairs
            .iter()
            .map(|(pos, neg)| Ok((Template::new(pos)?, Template::new(neg)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            pairs,
            aliases: BTreeMap::new(),
            case: ClassCase::AsGiven,
            complement: Vec::new(),
        })
    }

    /// CheXzero's templates: `"{}"` / `"no {}"`.
    pub fn chexzero() -> Self {
        Self::from_static(&[("{}", "no {}")])
    }

    /// The meta-label wording: `"{} is present"` / `"{} is absent"`, with the no-finding
    /// classes ([`NO_FINDING_CLASSES`]) as complements.
    ///
    /// A CLIP trained from scratch on meta-labels (or on reports) never learns what "absent"
    /// negates: `"normal is absent"` embeds as a short, finding-free text, i.e. as a normal
    /// study, closer to normal images than `"normal is present"` itself (measured on the demo:
    /// Normal AUC 0.87 from the positive prompt alone, 0.13 against its negative). "Not
    /// normal" means "some finding", which the model knows: the other classes' prompts.
    pub fn present_absent() -> Self {
        NO_FINDING_CLASSES.iter().fold(
            Self::from_static(&[("{} is present", "{} is absent")]),
            |set, c| set.with_complement(c),
        )
    }

    fn from_static(pairs: &[(&str, &str)]) -> Self {
        Self {
            pairs: pairs
                .iter()
                .map(|(p, n)| (Template(p.to_string()), Template(n.to_string())))
                .collect(),
            aliases: BTreeMap::new(),
            case: ClassCase::AsGiven,
            complement: Vec::new(),
        }
    }

    /// Adds one more (positive, negative) template pair.
    pub fn with_pair(mut self, positive: &str, negative: &str) -> Result<Self> {
        self.pairs
            .push((Template::new(positive)?, Template::new(negative)?));
        Ok(self)
    }

    /// Adds an alternative name for `class_name` (matched case-insensitively), e.g.
    /// `("Pleural Effusion", "effusion")`. Duplicates are ignored.
    pub fn with_alias(mut self, class_name: &str, alias: &str) -> Self {
        let list = self.aliases.entry(class_name.to_lowercase()).or_default();
        if !list.iter().any(|a| a == alias) {
            list.push(alias.to_owned());
        }
        self
    }

    /// Sets how class names are cased in the prompts (the tokenizer lowercases anyway).
    pub fn with_case(mut self, case: ClassCase) -> Self {
        self.case = case;
        self
    }

    /// Scores `class_name` (matched case-insensitively) as the complement of the other classes:
    /// its negative embedding is the mean of the other classes' positive embeddings ("some
    /// finding is present") instead of its negative prompts. Meant for "Normal" / "No Finding"
    /// with a model that has not learned negation. Duplicates are ignored.
    pub fn with_complement(mut self, class_name: &str) -> Self {
        let name = class_name.to_lowercase();
        if !self.complement.contains(&name) {
            self.complement.push(name);
        }
        self
    }

    /// Whether `class_name` is scored against the other classes
    /// ([`with_complement`](Self::with_complement)).
    pub fn is_complement(&self, class_name: &str) -> bool {
        let name = class_name.to_lowercase();
        self.complement.contains(&name)
    }

    /// Number of template pairs.
    pub fn num_pairs(&self) -> usize {
        self.pairs.len()
    }

    /// The name and then the aliases of `class_name`.
    pub fn names(&self, class_name: &str) -> Vec<String> {
        let mut names = vec![class_name.to_owned()];
        if let Some(aliases) = self.aliases.get(&class_name.to_lowercase()) {
            names.extend(aliases.iter().filter(|a| *a != class_name).cloned());
        }
        names
    }

    /// `(positives, negatives)` for one class: for each name (class name first, then aliases),
    /// for each pair in order. Both vectors have `names * pairs` entries, index-aligned.
    pub fn prompts(&self, class_name: &str) -> (Vec<String>, Vec<String>) {
        let names = self.names(class_name);
        let mut positives = Vec::with_capacity(names.len() * self.pairs.len());
        let mut negatives = Vec::with_capacity(names.len() * self.pairs.len());
        for name in &names {
            let name = self.case.apply(name);
            for (pos, neg) in &self.pairs {
                positives.push(pos.render(&name));
                negatives.push(neg.render(&name));
            }
        }
        (positives, negatives)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chexzero_templates() {
        let (pos, neg) = PromptSet::chexzero().prompts("Pleural Effusion");
        assert_eq!(pos, ["Pleural Effusion"]);
        assert_eq!(neg, ["no Pleural Effusion"]);
    }

    #[test]
    fn present_absent_templates_lowercased() {
        let set = PromptSet::present_absent().with_case(ClassCase::Lower);
        let (pos, neg) = set.prompts("Pleural Effusion");
        assert_eq!(pos, ["pleural effusion is present"]);
        assert_eq!(neg, ["pleural effusion is absent"]);
    }

    #[test]
    fn no_finding_classes_are_complements_of_the_present_absent_set_only() {
        let set = PromptSet::present_absent();
        assert!(set.is_complement("Normal") && set.is_complement("No Finding"));
        assert!(!set.is_complement("Pleural Effusion"));
        assert!(!PromptSet::chexzero().is_complement("Normal"));
        let parsed: PromptSet =
            serde_json::from_str(r#"{"pairs": [["{}", "no {}"]], "complement": ["Normal"]}"#)
                .unwrap();
        assert!(parsed.is_complement("normal"));
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<PromptSet>(&json).unwrap(), set);
    }

    #[test]
    fn several_templates_and_aliases_expand_names_times_pairs() {
        let set = PromptSet::chexzero()
            .with_pair("{} is present", "{} is absent")
            .unwrap()
            .with_alias("Pleural Effusion", "effusion")
            .with_alias("pleural effusion", "effusion")
            .with_alias("Pleural Effusion", "fluid in the pleural space");
        assert_eq!(set.num_pairs(), 2);
        assert_eq!(
            set.names("Pleural Effusion"),
            ["Pleural Effusion", "effusion", "fluid in the pleural space"]
        );
        let (pos, neg) = set.prompts("Pleural Effusion");
        assert_eq!(
            pos,
            [
                "Pleural Effusion",
                "Pleural Effusion is present",
                "effusion",
                "effusion is present",
                "fluid in the pleural space",
                "fluid in the pleural space is present",
            ]
        );
        assert_eq!(neg[1], "Pleural Effusion is absent");
        assert_eq!(neg[4], "no fluid in the pleural space");
        // A class without aliases only uses its own name.
        assert_eq!(set.prompts("Edema").0, ["Edema", "Edema is present"]);
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let set = PromptSet::chexzero()
            .with_pair("{} is present", "{} is absent")
            .unwrap()
            .with_alias("Pleural Effusion", "effusion");
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<PromptSet>(&json).unwrap(), set);
        let parsed: PromptSet = serde_json::from_str(
            r#"{"pairs": [["{}", "no {}"]], "aliases": {"Pleural Effusion": ["effusion"]}}"#,
        )
        .unwrap();
        assert_eq!(
            parsed.names("pleural effusion"),
            ["pleural effusion", "effusion"]
        );
        assert!(serde_json::from_str::<PromptSet>(r#"{"pairs": []}"#).is_err());
        assert!(serde_json::from_str::<PromptSet>(r#"{"pairs": [["{}", "no"]]}"#).is_err());
    }

    #[test]
    fn invalid_sets_are_errors() {
        assert!(matches!(PromptSet::new(&[]), Err(TextError::NoTemplates)));
        assert!(matches!(
            PromptSet::new(&[("{}", "absent")]),
            Err(TextError::BadTemplate { found: 0, .. })
        ));
        assert!(PromptSet::chexzero().with_pair("{} {}", "no {}").is_err());
        let custom = PromptSet::new(&[("findings of {}", "no evidence of {}")]).unwrap();
        assert_eq!(custom.prompts("Mass").1, ["no evidence of Mass"]);
    }
}
