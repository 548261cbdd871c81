//! The CXR-LT 2024 class vocabulary (40 classes, official column order) with training counts,
//! the paper's rare set, aliases used by other datasets, and the base / rare partition.

use crate::{DataError, Result};

/// One CXR-LT class and its number of positives in the CXR-LT 2024 `train_labeled.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassInfo {
    pub name: &'static str,
    pub train_count: u32,
}

const fn c(name: &'static str, train_count: u32) -> ClassInfo {
    ClassInfo { name, train_count }
}

/// The 40 CXR-LT 2024 classes in the label CSV's column order, with training positives
/// (258,871 images; see `shared/reference/datasets-and-references.md`).
pub const CXR_LT_CLASSES: [ClassInfo; 40] = [
    c("Adenopathy", 3409),
    c("Atelectasis", 65376),
    c("Azygos Lobe", 199),
    c("Calcification of the Aorta", 4239),
    c("Cardiomegaly", 74738),
    c("Clavicle Fracture", 168),
    c("Consolidation", 15371),
    c("Edema", 37256),
    c("Emphysema", 3661),
    c("Enlarged Cardiomediastinum", 29628),
    c("Fibrosis", 1169),
    c("Fissure", 2803),
    c("Fracture", 11568),
    c("Granuloma", 2965),
    c("Hernia", 3986),
    c("Hydropneumothorax", 646),
    c("Infarction", 727),
    c("Infiltration", 10087),
    c("Kyphosis", 778),
    c("Lobar Atelectasis", 129),
    c("Lung Lesion", 2338),
    c("Lung Opacity", 77482),
    c("Mass", 5288),
    c("Nodule", 7531),
    c("Normal", 34292),
    c("Pleural Effusion", 66401),
    c("Pleural Other", 616),
    c("Pleural Thickening", 3272),
    c("Pneumomediastinum", 704),
    c("Pneumonia", 46660),
    c("Pneumoperitoneum", 516),
    c("Pneumothorax", 13858),
    c("Pulmonary Embolism", 1631),
    c("Pulmonary Hypertension", 903),
    c("Rib Fracture", 8919),
    c("Round(ed) Atelectasis", 172),
    c("Subcutaneous Emphysema", 2046),
    c("Support Devices", 86079),
    c("Tortuous Aorta", 3336),
    c("Tuberculosis", 2078),
];

/// The paper's 12 rare classes: the 11 with fewer than 1000 training positives plus Fibrosis
/// (below 1000 in the frontal-only subset). Official column order.
pub const PAPER_RARE_CLASSES: [&str; 12] = [
    "Azygos Lobe",
    "Clavicle Fracture",
    "Fibrosis",
    "Hydropneumothorax",
    "Infarction",
    "Kyphosis",
    "Lobar Atelectasis",
    "Pleural Other",
    "Pneumomediastinum",
    "Pneumoperitoneum",
    "Pulmonary Hypertension",
    "Round(ed) Atelectasis",
];

/// Default training-count threshold below which a class is "rare" (the paper's 1000).
pub const DEFAULT_RARE_THRESHOLD: u32 = 1000;

/// The 40 class names as owned strings, official order.
pub fn cxr_lt_class_names() -> Vec<String> {
    CXR_LT_CLASSES.iter().map(|c| c.name.to_string()).collect()
}

/// Index of `name` in [`CXR_LT_CLASSES`], after alias resolution.
pub fn cxr_lt_index(name: &str) -> Option<usize> {
    let canon = canonical_name(name);
    CXR_LT_CLASSES.iter().position(|c| c.name == canon)
}

/// Other datasets' spellings of CXR-LT classes: (alias, canonical CXR-LT name).
pub const ALIASES: [(&str, &str); 6] = [
    ("Effusion", "Pleural Effusion"),
    ("No Finding", "Normal"),
    ("Pleural_Thickening", "Pleural Thickening"),
    ("Enlarged Cardiom.", "Enlarged Cardiomediastinum"),
    ("Rounded Atelectasis", "Round(ed) Atelectasis"),
    ("Calcified Aorta", "Calcification of the Aorta"),
];

/// Map a dataset's class spelling onto the CXR-LT vocabulary ("Effusion" -> "Pleural
/// Effusion"); names without an alias are returned unchanged.
pub fn canonical_name(name: &str) -> &str {
    let trimmed = name.trim();
    ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(trimmed))
        .map_or(trimmed, |(_, canon)| canon)
}

/// One dataset's class, matched to a class of another vocabulary through [`ALIASES`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MappedClass {
    /// The name as written in the label file ("Effusion").
    pub from: String,
    /// The vocabulary's name ("Pleural Effusion"); equal to `from` when no alias was needed.
    pub to: String,
}

/// How one dataset's class names map onto another vocabulary: every name lands in exactly
/// one of the two lists, so nothing is dropped silently.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClassMapping {
    /// Names found in the vocabulary, directly or through an alias, in input order.
    pub mapped: Vec<MappedClass>,
    /// Names with no counterpart in the vocabulary, in input order.
    pub unmapped: Vec<String>,
}

impl ClassMapping {
    /// The vocabulary name of `from`, if it mapped.
    pub fn target(&self, from: &str) -> Option<&str> {
        self.mapped
            .iter()
            .find(|m| m.from == from)
            .map(|m| m.to.as_str())
    }

    /// Mapped classes whose name changed ("Effusion" -> "Pleural Effusion").
    pub fn renamed(&self) -> impl Iterator<Item = &MappedClass> {
        self.mapped.iter().filter(|m| m.from != m.to)
    }

    /// One line per renamed and per unmapped class, for a report or the console.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for m in self.renamed() {
            s.push_str(&format!("  {:?} -> {:?}\n", m.from, m.to));
        }
        for u in &self.unmapped {
            s.push_str(&format!(
                "  {u:?} -> (unmapped: no class of that name or alias)\n"
            ));
        }
        s
    }
}

/// Maps class names onto `vocabulary` through the one alias table, [`ALIASES`] (NIH
/// "Effusion" -> "Pleural Effusion", "Pleural_Thickening" -> "Pleural Thickening", CheXpert
/// "No Finding" -> "Normal", ...): exact names first, then aliases; case and surrounding
/// spaces are ignored. Names that match nothing are listed in `unmapped`.
pub fn map_classes<S: AsRef<str>>(names: &[S], vocabulary: &[&str]) -> ClassMapping {
    let find = |n: &str| {
        vocabulary
            .iter()
            .find(|v| v.eq_ignore_ascii_case(n.trim()))
            .copied()
    };
    let mut out = ClassMapping::default();
    for name in names {
        let name = name.as_ref();
        match find(name).or_else(|| find(canonical_name(name))) {
            Some(to) => out.mapped.push(MappedClass {
                from: name.to_string(),
                to: to.to_string(),
            }),
            None => out.unmapped.push(name.to_string()),
        }
    }
    out
}

/// [`map_classes`] onto the 40 CXR-LT classes.
pub fn map_to_cxr_lt<S: AsRef<str>>(names: &[S]) -> ClassMapping {
    let vocab: Vec<&str> = CXR_LT_CLASSES.iter().map(|c| c.name).collect();
    map_classes(names, &vocab)
}

/// How to decide which classes are "rare" when reporting base / rare macro AUC.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RareRule {
    /// Fewer than `threshold` positives in the given training counts.
    CountBelow(u32),
    /// The paper's fixed list [`PAPER_RARE_CLASSES`].
    #[default]
    PaperList,
}

/// Split class indices into (base, rare). `counts[i]` is class `i`'s number of training
/// positives; it is only used by [`RareRule::CountBelow`].
pub fn base_rare_split(
    classes: &[String],
    counts: &[u32],
    rule: &RareRule,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if matches!(rule, RareRule::CountBelow(_)) && counts.len() != classes.len() {
        return Err(DataError::InvalidParam(format!(
            "{} class counts for {} classes",
            counts.len(),
            classes.len()
        )));
    }
    let (mut base, mut rare) = (Vec::new(), Vec::new());
    for (i, name) in classes.iter().enumerate() {
        let is_rare = match rule {
            RareRule::CountBelow(t) => counts[i] < *t,
            RareRule::PaperList => PAPER_RARE_CLASSES.contains(&canonical_name(name)),
        };
        if is_rare {
            rare.push(i)
        } else {
            base.push(i)
        }
    }
    Ok((base, rare))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_rare_set_is_the_starred_classes_plus_fibrosis() {
        let names = cxr_lt_class_names();
        let counts: Vec<u32> = CXR_LT_CLASSES.iter().map(|c| c.train_count).collect();
        let (_, by_count) = base_rare_split(&names, &counts, &RareRule::CountBelow(1000)).unwrap();
        let mut from_counts: Vec<&str> = by_count.iter().map(|&i| names[i].as_str()).collect();
        assert_eq!(from_counts.len(), 11);
        from_counts.push("Fibrosis");
        from_counts.sort_unstable();
        let mut paper = PAPER_RARE_CLASSES.to_vec();
        paper.sort_unstable();
        assert_eq!(from_counts, paper);
        let (base, rare) = base_rare_split(&names, &[], &RareRule::PaperList).unwrap();
        assert_eq!((base.len(), rare.len()), (28, 12));
    }

    #[test]
    fn official_order_is_alphabetical_and_aliases_resolve() {
        let names = cxr_lt_class_names();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(cxr_lt_index("Effusion"), Some(25));
        assert_eq!(cxr_lt_index("No Finding"), Some(24));
        assert_eq!(canonical_name("Mass"), "Mass");
        assert!(base_rare_split(&names, &[1, 2], &RareRule::CountBelow(5)).is_err());
    }

    #[test]
    fn nih_and_chexpert_names_map_onto_cxr_lt_and_the_rest_is_reported() {
        let nih = crate::NIH_CLASSES;
        let m = map_to_cxr_lt(&nih);
        assert!(m.unmapped.is_empty(), "{:?}", m.unmapped);
        assert_eq!(m.target("Effusion"), Some("Pleural Effusion"));
        assert_eq!(m.target("Pleural_Thickening"), Some("Pleural Thickening"));
        assert_eq!(m.target("No Finding"), Some("Normal"));
        assert_eq!(m.target("Mass"), Some("Mass"));
        assert_eq!(m.renamed().count(), 3);
        let m = map_to_cxr_lt(&["edema", " Lung Lesion ", "Bulla", "Mystery"]);
        assert_eq!(m.target("edema"), Some("Edema"));
        assert_eq!(m.target(" Lung Lesion "), Some("Lung Lesion"));
        assert_eq!(m.unmapped, vec!["Bulla", "Mystery"]);
        assert_eq!(m.mapped.len() + m.unmapped.len(), 4);
        let d = m.describe();
        assert!(
            d.contains("\"Bulla\" -> (unmapped") && d.contains("\"edema\" -> \"Edema\""),
            "{d}"
        );
    }
}
