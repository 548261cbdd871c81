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
/// ["effusion"] }` (keys lowercase), `texts = { normal = ["no acute cardiopulmonary process"] }`
/// (literal positive texts added to a class's templated ones, keys lowercase), `case`, and
/// `complement = ["normal"]`: classes meaning "no finding", scored from their positive prompts
/// alone (see [`is_complement`](Self::is_complement)). At least one pair is required.
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
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    texts: BTreeMap<String, Vec<String>>,
}

/// Classes that name the absence of every finding (CXR-LT's "Normal", CheXpert / NIH's "No
/// Finding"): [`PromptSet::present_absent`] scores them from their positive prompts alone.
pub const NO_FINDING_CLASSES: [&str; 2] = ["normal", "no finding"];

/// How a report's impression commonly says that a study shows nothing (MIMIC-CXR's reports;
/// the synthetic reports use it too).
pub const NORMAL_REPORT_TEXT: &str = "no acute cardiopulmonary process";

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
    #[serde(default)]
    texts: BTreeMap<String, Vec<String>>,
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
            texts: BTreeMap::new(),
        };
        for (class_name, texts) in &raw.texts {
            for text in texts {
                set = set.with_text(class_name, text);
            }
        }
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
            texts: BTreeMap::new(),
        })
    }

    /// CheXzero's templates: `"{}"` / `"no {}"`.
    pub fn chexzero() -> Self {
        Self::from_static(&[("{}", "no {}")])
    }

    /// The meta-label wording: `"{} is present"` / `"{} is absent"`, with the no-finding
    /// classes ([`NO_FINDING_CLASSES`]) as complements whose positive prompts also hold the
    /// words a radiology report uses for a normal study ([`NORMAL_REPORT_TEXT`]).
    ///
    /// A CLIP trained from scratch on meta-labels (or on reports) never learns what "absent"
    /// negates: `"normal is absent"` embeds as a short, finding-free text, i.e. as a normal
    /// study, closer to normal images than `"normal is present"` itself (measured on the demo:
    /// Normal AUC 0.87 from the positive prompt alone, 0.13 against its negative). Scoring it
    /// against the mean of the other classes' prompts instead was fragile: those texts embed
    /// almost alike (mean norm 0.95), so the score is a difference of two near-equal
    /// similarities, and one seed's CXR-CML model ranked Normal at 0.33 that way (0.85 from its
    /// positive prompt alone). A complement is therefore scored from its positive prompts
    /// alone. A report-trained model does not say "normal is present" (its reports say "heart
    /// size is normal" of abnormal studies too; 0.23-0.42 on the demo's three seeds), hence the
    /// report wording beside it: with both, Normal scored 0.76-0.91 for all nine demo models.
    pub fn present_absent() -> Self {
        NO_FINDING_CLASSES.iter().fold(
            Self::from_static(&[("{} is present", "{} is absent")]),
            |set, c| set.with_complement(c).with_text(c, NORMAL_REPORT_TEXT),
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
            texts: BTreeMap::new(),
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

    /// Scores `class_name` (matched case-insensitively) as a complement: "no finding", scored
    /// from its positive prompts alone (no negative prompt; the caller uses a zero negative
    /// embedding, so CheXzero's softmax becomes a sigmoid of the cosine). Meant for "Normal" /
    /// "No Finding" with a model that has not learned negation. Duplicates are ignored.
    pub fn with_complement(mut self, class_name: &str) -> Self {
        let name = class_name.to_lowercase();
        if !self.complement.contains(&name) {
            self.complement.push(name);
        }
        self
    }

    /// Whether `class_name` is scored from its positive prompts alone
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

    /// Adds a literal positive text for `class_name` (matched case-insensitively), used as
    /// written after its templated prompts, e.g. a report's wording for a normal study.
    /// Duplicates are ignored.
    pub fn with_text(mut self, class_name: &str, text: &str) -> Self {
        let list = self.texts.entry(class_name.to_lowercase()).or_default();
        if !list.iter().any(|t| t == text) {
            list.push(text.to_owned());
        }
        self
    }

    /// `(positives, negatives)` for one class: for each name (class name first, then aliases),
    /// for each pair in order; the negatives have these `names * pairs` entries, index-aligned
    /// with the first positives, and the class's literal texts ([`with_text`](Self::with_text))
    /// follow among the positives only.
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
        if let Some(texts) = self.texts.get(&class_name.to_lowercase()) {
            positives.extend(texts.iter().cloned());
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
        assert_eq!(
            set.prompts("Normal").0,
            ["Normal is present", NORMAL_REPORT_TEXT]
        );
        assert_eq!(set.prompts("Normal").1, ["Normal is absent"]);
        assert_eq!(set.prompts("Edema").0, ["Edema is present"]);
        let parsed: PromptSet = serde_json::from_str(
            r#"{"pairs": [["{}", "no {}"]], "texts": {"Mass": ["a mass is seen"]}}"#,
        )
        .unwrap();
        assert_eq!(parsed.prompts("mass").0, ["mass", "a mass is seen"]);
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
