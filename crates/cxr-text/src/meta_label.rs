//! Meta-label text: the sentence CXR-CML pairs with an image in place of a report, listing the
//! image's positive classes ("adenopathy is present, pleural effusion is present").

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TextError};
use crate::template::{ClassCase, Template};

/// The class name rendered for an image without any positive label. Neither the paper nor the
/// released code defines this case; "No Finding" is CheXpert's and MIMIC-CXR's name for it.
pub const NO_FINDING: &str = "No Finding";

/// How positive class names become one text: each name goes through a template, the phrases
/// are joined by a separator, and an image without positives gets a defined text.
///
/// In a TOML config: `template = "{} is present"`, and optionally `separator` (default
/// `", "`), `case` (`"as_given"` or `"lower"`) and `empty_text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaLabelText {
    template: Template,
    #[serde(default = "default_separator")]
    separator: String,
    #[serde(default)]
    case: ClassCase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    empty_text: Option<String>,
}

fn default_separator() -> String {
    ", ".to_owned()
}

impl MetaLabelText {
    /// A custom form: `template` (one `{}`) per class, joined by `", "`, class names kept as
    /// given; set the rest with the `with_*` methods.
    pub fn new(template: &str) -> Result<Self> {
        Ok(Self {
            template: Template::new(template)?,
            separator: default_separator(),
            case: ClassCase::AsGiven,
            empty_text: None,
        })
    }

    /// The paper's form: `"adenopathy is present, pleural effusion is present"`; no positive
    /// label gives `"no finding is present"`.
    pub fn paper() -> Self {
        Self {
            template: Template("{} is present".to_owned()),
            separator: ", ".to_owned(),
            case: ClassCase::Lower,
            empty_text: None,
        }
    }

    /// The released code's form: `"Adenopathy is present. Pleural Effusion is present."`; no
    /// positive label gives `"No Finding is present."`.
    pub fn released_code() -> Self {
        Self {
            template: Template("{} is present.".to_owned()),
            separator: " ".to_owned(),
            case: ClassCase::AsGiven,
            empty_text: None,
        }
    }

    /// Sets the text placed between two class phrases.
    pub fn with_separator(mut self, separator: &str) -> Self {
        self.separator = separator.to_owned();
        self
    }

    /// Sets how class names are cased.
    pub fn with_case(mut self, case: ClassCase) -> Self {
        self.case = case;
        self
    }

    /// Sets the text for an image without positive labels (by default the template applied to
    /// [`NO_FINDING`]).
    pub fn with_empty_text(mut self, text: &str) -> Self {
        self.empty_text = Some(text.to_owned());
        self
    }

    /// The per-class template.
    pub fn template(&self) -> &str {
        self.template.as_str()
    }

    /// The text rendered when there is no positive label.
    pub fn empty_text(&self) -> String {
        match &self.empty_text {
            Some(text) => text.clone(),
            None => self.template.render(&self.case.apply(NO_FINDING)),
        }
    }

    /// Renders the positive classes in the order given (fixed class order: pass them in the
    /// dataset's column order).
    pub fn render(&self, positives: &[&str]) -> String {
        if positives.is_empty() {
            return self.empty_text();
        }
        positives
            .iter()
            .map(|name| self.template.render(&self.case.apply(name)))
            .collect::<Vec<_>>()
            .join(&self.separator)
    }

    /// Renders the positive classes in a random order drawn from `rng` (a fresh permutation per
    /// call, so the model does not learn a position per class).
    pub fn render_shuffled<R: Rng + ?Sized>(&self, positives: &[&str], rng: &mut R) -> String {
        let mut order: Vec<&str> = positives.to_vec();
        order.shuffle(rng);
        self.render(&order)
    }

    /// Renders from a multi-hot row: `class_names[i]` is positive where `mask[i]` is true.
    pub fn render_mask(&self, class_names: &[&str], mask: &[bool]) -> Result<String> {
        Ok(self.render(&positives_from_mask(class_names, mask)?))
    }
}

/// The class names whose mask entry is true, in class order.
pub fn positives_from_mask<'a>(class_names: &[&'a str], mask: &[bool]) -> Result<Vec<&'a str>> {
    if class_names.len() != mask.len() {
        return Err(TextError::MaskLength {
            mask: mask.len(),
            classes: class_names.len(),
        });
    }
    Ok(class_names
        .iter()
        .zip(mask)
        .filter(|(_, &positive)| positive)
        .map(|(&name, _)| name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const TWO: [&str; 2] = ["Adenopathy", "Pleural Effusion"];

    #[test]
    fn paper_form() {
        assert_eq!(
            MetaLabelText::paper().render(&TWO),
            "adenopathy is present, pleural effusion is present"
        );
        assert_eq!(
            MetaLabelText::paper().render(&["Edema"]),
            "edema is present"
        );
    }

    #[test]
    fn released_code_form() {
        assert_eq!(
            MetaLabelText::released_code().render(&TWO),
            "Adenopathy is present. Pleural Effusion is present."
        );
    }

    #[test]
    fn no_positive_label_has_a_defined_text() {
        assert_eq!(MetaLabelText::paper().render(&[]), "no finding is present");
        assert_eq!(
            MetaLabelText::released_code().render(&[]),
            "No Finding is present."
        );
        let custom = MetaLabelText::paper().with_empty_text("normal chest radiograph");
        assert_eq!(custom.render(&[]), "normal chest radiograph");
    }

    #[test]
    fn custom_template_separator_and_case() {
        let m = MetaLabelText::new("positive for {}")
            .unwrap()
            .with_separator("; ")
            .with_case(ClassCase::Lower);
        assert_eq!(
            m.render(&TWO),
            "positive for adenopathy; positive for pleural effusion"
        );
        assert_eq!(m.template(), "positive for {}");
        assert!(MetaLabelText::new("no placeholder").is_err());
    }

    #[test]
    fn shuffled_order_is_a_seeded_permutation() {
        let m = MetaLabelText::released_code();
        let names = ["Atelectasis", "Cardiomegaly", "Edema", "Mass", "Nodule"];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let text = m.render_shuffled(&names, &mut rng);
            let mut phrases: Vec<&str> = text.split(" is present.").collect();
            assert_eq!(phrases.pop(), Some(""));
            let mut sorted: Vec<&str> = phrases.iter().map(|p| p.trim()).collect();
            seen.insert(sorted.join(","));
            sorted.sort_unstable();
            assert_eq!(sorted, names);
        }
        // 50 draws from 120 orders: more than one order must appear.
        assert!(seen.len() > 10, "only {} distinct orders", seen.len());
        // Same seed, same text.
        let a = m.render_shuffled(&names, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        let b = m.render_shuffled(&names, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
        assert_eq!(a, b);
        assert_eq!(m.render_shuffled(&[], &mut rng), "No Finding is present.");
    }

    #[test]
    fn serde_round_trip_validates_the_template() {
        for m in [MetaLabelText::paper(), MetaLabelText::released_code()] {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<MetaLabelText>(&json).unwrap(), m);
        }
        let minimal: MetaLabelText =
            serde_json::from_str(r#"{"template": "{} is present", "case": "lower"}"#).unwrap();
        assert_eq!(minimal, MetaLabelText::paper());
        let err = serde_json::from_str::<MetaLabelText>(r#"{"template": "present"}"#);
        assert!(err.unwrap_err().to_string().contains("placeholder"));
        assert!(serde_json::from_str::<MetaLabelText>(r#"{"template": "{}", "x": 1}"#).is_err());
    }

    #[test]
    fn mask_rendering_keeps_class_order() {
        let names = ["Adenopathy", "Atelectasis", "Pleural Effusion"];
        let m = MetaLabelText::paper();
        assert_eq!(
            m.render_mask(&names, &[true, false, true]).unwrap(),
            "adenopathy is present, pleural effusion is present"
        );
        assert!(matches!(
            m.render_mask(&names, &[true]),
            Err(TextError::MaskLength {
                mask: 1,
                classes: 3
            })
        ));
    }
}
