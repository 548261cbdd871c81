//! A validated one-placeholder text template, shared by meta-labels and prompts.

use serde::{Deserialize, Serialize};

use crate::error::{Result, TextError};

/// How a class name is written into text (`"as_given"` / `"lower"` in configs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassCase {
    /// Keep the class name as given ("Pleural Effusion").
    #[default]
    AsGiven,
    /// Lowercase it ("pleural effusion"), as the paper writes meta-labels.
    Lower,
}

impl ClassCase {
    pub(crate) fn apply(self, name: &str) -> String {
        match self {
            Self::AsGiven => name.to_owned(),
            Self::Lower => name.to_lowercase(),
        }
    }
}

/// A template with exactly one `{}` placeholder, e.g. `"{} is present"`. Deserialising checks
/// the placeholder too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Template(pub(crate) String);

impl TryFrom<String> for Template {
    type Error = TextError;

    fn try_from(value: String) -> Result<Self> {
        Self::new(&value)
    }
}

impl From<Template> for String {
    fn from(value: Template) -> Self {
        value.0
    }
}

impl Template {
    /// Checks that `template` holds exactly one `{}`.
    pub fn new(template: &str) -> Result<Self> {
        let found = template.matches("{}").count();
        if found != 1 {
            return Err(TextError::BadTemplate {
                template: template.to_owned(),
                found,
            });
        }
        Ok(Self(template.to_owned()))
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The template with `{}` replaced by `name`.
    pub fn render(&self, name: &str) -> String {
        self.0.replacen("{}", name, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_needs_exactly_one_placeholder() {
        assert!(matches!(
            Template::new("is present"),
            Err(TextError::BadTemplate { found: 0, .. })
        ));
        assert!(matches!(
            Template::new("{} and {}"),
            Err(TextError::BadTemplate { found: 2, .. })
        ));
        assert_eq!(Template::new("no {}").unwrap().render("Edema"), "no Edema");
    }

    #[test]
    fn placeholder_in_class_name_is_not_expanded_again() {
        let t = Template::new("{} is present").unwrap();
        assert_eq!(t.render("odd {} name"), "odd {} name is present");
    }

    #[test]
    fn class_case() {
        assert_eq!(
            ClassCase::Lower.apply("Round(ed) Atelectasis"),
            "round(ed) atelectasis"
        );
        assert_eq!(
            ClassCase::AsGiven.apply("Pleural Effusion"),
            "Pleural Effusion"
        );
    }
}
