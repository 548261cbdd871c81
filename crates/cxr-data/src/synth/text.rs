//! MIMIC-CXR-style free-text reports for the synthetic studies.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Per CXR-LT class (official order): ways a radiologist writes the positive finding.
const POSITIVE: [&[&str]; 40] = [
    &[
        "Mediastinal and hilar lymphadenopathy.",
        "Enlarged hilar lymph nodes are noted.",
        "Bulky adenopathy at the hila.",
    ],
    &[
        "Bibasilar atelectasis.",
        "Plate-like atelectasis at the lung base.",
        "Streaky opacity likely reflecting subsegmental atelectasis.",
    ],
    &[
        "Incidental azygos lobe.",
        "An azygos fissure is present in the right upper zone.",
    ],
    &[
        "Calcification of the aortic knob.",
        "Atherosclerotic calcification of the aortic arch.",
    ],
    &[
        "The heart is enlarged.",
        "Moderate cardiomegaly.",
        "Cardiac silhouette is enlarged.",
    ],
    &[
        "Displaced fracture of the clavicle.",
        "Clavicular fracture is seen.",
    ],
    &[
        "Dense consolidation in the lower lobe.",
        "Focal consolidation is present.",
        "Airspace consolidation.",
    ],
    &[
        "Mild pulmonary edema.",
        "Interstitial edema with Kerley B lines.",
        "Pulmonary vascular congestion and edema.",
    ],
    &[
        "The lungs are hyperinflated, consistent with emphysema.",
        "Emphysematous changes.",
        "Hyperexpanded lungs with flattened diaphragms.",
    ],
    &[
        "The mediastinum is widened.",
        "Enlarged cardiomediastinal silhouette.",
    ],
    &[
        "Reticular opacities at the bases suggesting pulmonary fibrosis.",
        "Chronic fibrotic changes in both lungs.",
        "Interstitial fibrosis.",
    ],
    &["The minor fissure is thickened.", "Prominent fissure."],
    &[
        "Healing rib fracture.",
        "Old fracture deformity of a lateral rib.",
    ],
    &[
        "Small calcified granuloma.",
        "Calcified granulomas in the lung.",
    ],
    &[
        "Hiatal hernia behind the heart.",
        "Moderate hiatus hernia with an air-fluid level.",
    ],
    &[
        "Hydropneumothorax with an air-fluid level.",
        "Air and fluid in the pleural space.",
    ],
    &[
        "Wedge-shaped peripheral opacity concerning for pulmonary infarct.",
        "Findings suggest pulmonary infarction.",
    ],
    &[
        "Patchy infiltrates.",
        "Multifocal infiltrate.",
        "Scattered ill-defined infiltrates.",
    ],
    &[
        "Exaggerated thoracic kyphosis.",
        "Kyphotic curvature of the thoracic spine.",
    ],
    &[
        "Left lower lobe collapse.",
        "Lobar atelectasis with volume loss.",
    ],
    &[
        "Irregular spiculated lung lesion.",
        "A lung lesion is present.",
    ],
    &[
        "Hazy opacity in the lung.",
        "Increased lung opacity.",
        "Ill-defined opacification.",
    ],
    &[
        "Large mass in the lung.",
        "A well-circumscribed pulmonary mass.",
    ],
    &[
        "Small pulmonary nodule.",
        "A nodular opacity is seen.",
        "Rounded nodule.",
    ],
    &[
        "The lungs are clear.",
        "No acute cardiopulmonary abnormality.",
    ],
    &[
        "Small pleural effusion.",
        "Moderate pleural effusion with blunting of the costophrenic angle.",
        "Layering effusion.",
    ],
    &[
        "Calcified pleural plaques.",
        "Pleural plaques along the chest wall.",
    ],
    &[
        "Pleural thickening along the lateral chest wall.",
        "Apical pleural thickening.",
    ],
    &[
        "Pneumomediastinum is present.",
        "Lucent stripes outlining the mediastinum.",
    ],
    &[
        "Findings concerning for pneumonia.",
        "Consolidation with air bronchograms, likely pneumonia.",
        "Infectious process is suspected.",
    ],
    &["Free air under the diaphragm.", "Pneumoperitoneum."],
    &[
        "Small apical pneumothorax.",
        "Pneumothorax with a visible pleural line.",
        "There is a pneumothorax.",
    ],
    &[
        "Regional oligemia raising concern for pulmonary embolism.",
        "Findings may represent pulmonary embolism.",
    ],
    &[
        "Enlarged central pulmonary arteries consistent with pulmonary hypertension.",
        "Pulmonary arterial hypertension.",
    ],
    &[
        "Acute rib fracture.",
        "Nondisplaced rib fractures.",
        "Fractured lateral rib.",
    ],
    &[
        "Round atelectasis with a comet tail sign.",
        "Rounded atelectasis adjacent to the pleura.",
    ],
    &[
        "Subcutaneous emphysema in the chest wall.",
        "Subcutaneous air is present.",
    ],
    &[
        "Endotracheal tube in standard position.",
        "Right internal jugular central line.",
        "Pacemaker leads in place.",
        "Support lines and tubes are unchanged.",
    ],
    &[
        "Tortuous thoracic aorta.",
        "The descending aorta is tortuous.",
    ],
    &[
        "Upper lobe cavitary opacity concerning for tuberculosis.",
        "Apical scarring suggesting prior tuberculosis.",
    ],
];

/// Negations for commonly reported absent findings: (class index, sentence).
const NEGATIONS: [(usize, &str); 8] = [
    (31, "No pneumothorax."),
    (25, "No pleural effusion."),
    (4, "Heart size is normal."),
    (6, "No focal consolidation."),
    (7, "No pulmonary edema."),
    (22, "No mass."),
    (34, "No acute osseous abnormality."),
    (9, "Mediastinal contours are normal."),
];

/// Write a report for a study positive for `positives` (class indices); `view` is the
/// examination text. Some positives are left out, as radiologists do not mention everything.
pub(crate) fn report(rng: &mut ChaCha8Rng, positives: &[usize], exam: &str) -> String {
    let mut findings: Vec<String> = Vec::new();
    let mut mentioned = Vec::new();
    let normal = positives.iter().all(|&k| k == 24);
    for &k in positives {
        if k == 24 {
            continue;
        }
        if rng.gen_bool(0.88) {
            let mut s = POSITIVE[k].choose(rng).expect("phrases").to_string();
            if rng.gen_bool(0.12) {
                s = format!("Possible {}", lower_first(&s));
            }
            findings.push(s);
            mentioned.push(k);
        }
    }
    for &(k, neg) in &NEGATIONS {
        if !positives.contains(&k) && rng.gen_bool(0.35) {
            findings.push(neg.to_string());
        }
    }
    findings.shuffle(rng);
    if normal || findings.is_empty() {
        findings.insert(0, "The lungs are clear.".into());
    }
    let impression = if normal || mentioned.is_empty() {
        [
            "No acute cardiopulmonary process.",
            "No acute intrathoracic abnormality.",
        ]
        .choose(rng)
        .expect("phrases")
        .to_string()
    } else {
        mentioned.shuffle(rng);
        let n = mentioned.len().min(rng.gen_range(1..=3));
        mentioned[..n]
            .iter()
            .enumerate()
            .map(|(i, &k)| format!("{}. {}", i + 1, POSITIVE[k].choose(rng).expect("phrases")))
            .collect::<Vec<_>>()
            .join("\n ")
    };
    format!(
        "                                 FINAL REPORT\n EXAMINATION:  {exam}\n \n INDICATION:  ___ with shortness of breath\n \n COMPARISON:  None.\n \n FINDINGS: \n \n {}\n \n IMPRESSION: \n \n {}\n",
        wrap(&findings.join("  ")),
        impression
    )
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Wrap at about 70 columns like the MIMIC report files.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = 0;
    for w in text.split(' ') {
        if line + w.len() > 70 && line > 0 {
            out.push_str("\n ");
            line = 0;
        } else if line > 0 {
            out.push(' ');
            line += 1;
        }
        out.push_str(w);
        line += w.len();
    }
    out
}
