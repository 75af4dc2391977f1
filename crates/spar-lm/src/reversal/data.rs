//! Synthetic fact corpora for the reversal curse (Berglund et al. 2023; the splits of Wang and
//! Sun 2025, "Is the reversal curse a binding problem?", `data_gen_reversal.ipynb`).
//!
//! Entities have made-up names ("Zorvin", "Amelt"), unique within a corpus, two or three
//! syllables long (several byte tokens each). A fact `(A, relation, B)` is written in its
//! forward direction as "The father of A is B." and in its reverse direction with the inverse
//! relation as "The child of B is A.". Relations:
//!
//! | relation | inverse | kind |
//! |---|---|---|
//! | mentor | student | one-to-one: every mentor has one student |
//! | father | child | many-to-one: a father has [`CorpusConfig::children`] children |
//!
//! Every fact belongs to one split, and the splits share no entity:
//!
//! * [`Split::Both`]: both sentences are in the training set (where a model can learn that a
//!   relation and its inverse go together: the paper's group A);
//! * [`Split::OneWay`]: only the forward sentence is trained; the reverse question is the test
//!   (the paper's group B, "atomic" and "test" items);
//! * [`Split::HeldOut`]: neither sentence is trained, nor any other sentence naming its
//!   entities (a control: a model can only be at chance).
//!
//! Each fact is queried in both directions ([`Query`]): forward ("The father of A is" → B),
//! reverse ("The child of B is" → A; every child of B counts for a many-to-one relation),
//! for models that fill blanks the reverse question as the forward sentence with the subject
//! masked ("The father of [MASK] is B." → A), and the forward sentence's units in reversed
//! order up to the answer ("B is" → A, SPT's reversed order).
//!
//! Everything is a function of [`CorpusConfig`], seed included: the same configuration gives
//! the same corpus byte for byte.

use crate::error::{LmError, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// The placeholder for the masked entity in an infilling query.
pub const MASK_TEXT: &str = "[MASK]";

/// How one relation's facts map subjects to objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// Every object has exactly one subject.
    OneToOne,
    /// An object has several subjects (a father, several children).
    ManyToOne,
}

/// A relation with its inverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Relation {
    /// The forward name: "The {name} of A is B."
    pub name: &'static str,
    /// The inverse name: "The {inverse} of B is A."
    pub inverse: &'static str,
    /// One-to-one or many-to-one.
    pub kind: RelationKind,
}

/// The relations of every corpus (the table in the module docs).
pub const RELATIONS: [Relation; 2] = [
    Relation {
        name: "mentor",
        inverse: "student",
        kind: RelationKind::OneToOne,
    },
    Relation {
        name: "father",
        inverse: "child",
        kind: RelationKind::ManyToOne,
    },
];

/// Which sentences of a fact are trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Both directions are trained.
    Both,
    /// Only the forward sentence is trained.
    OneWay,
    /// Nothing about its entities is trained.
    HeldOut,
}

impl Split {
    /// Every split, in report order.
    pub const ALL: [Split; 3] = [Split::Both, Split::OneWay, Split::HeldOut];

    /// The split's name in files and metric names (`one_way`).
    pub fn name(self) -> &'static str {
        match self {
            Split::Both => "both",
            Split::OneWay => "one_way",
            Split::HeldOut => "held_out",
        }
    }
}

/// Which way a query asks a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// "The father of A is" → B.
    Forward,
    /// "The child of B is" → A.
    Reverse,
    /// "The father of [MASK] is B." → A: the reverse question as a blank in the forward
    /// sentence (models that fill blanks).
    ReverseInfill,
    /// "B is" → A: the forward sentence's units in reversed order, up to the answer (SPT's
    /// reversed training order; every entity belongs to one relation, so it is unambiguous).
    ReverseOrder,
}

impl Direction {
    /// The direction's name in files and metric names.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Reverse => "reverse",
            Direction::ReverseInfill => "reverse_infill",
            Direction::ReverseOrder => "reverse_order",
        }
    }
}

/// The corpus generator's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorpusConfig {
    /// Seed of the names and of the assignment of entities to facts and splits.
    pub seed: u64,
    /// Facts per one-to-one relation per split (two fresh entities each).
    pub pairs: usize,
    /// Fathers per many-to-one relation per split.
    pub fathers: usize,
    /// Children of each father.
    pub children: usize,
}

impl Default for CorpusConfig {
    fn default() -> Self {
        CorpusConfig {
            seed: 0,
            pairs: 10,
            fathers: 3,
            children: 3,
        }
    }
}

impl CorpusConfig {
    /// Checks the sizes: at least one fact per split, at least two children.
    pub fn validate(&self) -> Result<()> {
        if self.pairs == 0 || self.fathers == 0 {
            return Err(LmError::InvalidArgument(format!(
                "corpus: pairs ({}) and fathers ({}) must be at least 1",
                self.pairs, self.fathers
            )));
        }
        if self.children < 2 {
            return Err(LmError::InvalidArgument(format!(
                "corpus: children is {}; a many-to-one relation needs at least 2",
                self.children
            )));
        }
        if self.entity_count() > 20_000 {
            return Err(LmError::InvalidArgument(format!(
                "corpus: {} entities; the name generator makes at most 20000",
                self.entity_count()
            )));
        }
        Ok(())
    }

    /// How many entities the corpus names.
    pub fn entity_count(&self) -> usize {
        Split::ALL.len() * (2 * self.pairs + self.fathers * (1 + self.children))
    }
}

/// One fact: `subject`'s `relation` is `object` ("The father of subject is object.").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// Index in [`Corpus::facts`].
    pub id: usize,
    /// Index in [`RELATIONS`].
    pub relation: usize,
    /// The subject entity.
    pub subject: String,
    /// The object entity.
    pub object: String,
    /// Which sentences are trained.
    pub split: Split,
}

/// A sentence as semantic units (phrases and entities; SPT permutes these), with the fact and
/// direction it states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sentence {
    /// The units, in order: `["The father of", "Zorvin", "is", "Amelt"]`.
    pub units: Vec<String>,
    /// The fact it states.
    pub fact: usize,
    /// Forward or reverse.
    pub direction: Direction,
}

impl Sentence {
    /// The text: the units joined by spaces, then a full stop.
    pub fn text(&self) -> String {
        format!("{}.", self.units.join(" "))
    }
}

/// A question about one fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Query {
    /// The fact asked about.
    pub fact: usize,
    /// The fact's split.
    pub split: Split,
    /// The fact's relation kind.
    pub kind: RelationKind,
    /// Which way it is asked.
    pub direction: Direction,
    /// The units before the answer (`["The child of", "Amelt", "is"]`); for
    /// [`Direction::ReverseInfill`], the whole sentence's units with [`MASK_TEXT`] in the
    /// answer's place.
    pub units: Vec<String>,
    /// The expected answer (the fact's other entity).
    pub answer: String,
    /// Every entity that answers the question correctly (the answer and, for the reverse of a
    /// many-to-one fact, its siblings).
    pub accepted: Vec<String>,
}

impl Query {
    /// The text a left-to-right model continues ("The child of Amelt is"), or the sentence
    /// with [`MASK_TEXT`] in the blank ("The father of [MASK] is Amelt.").
    pub fn text(&self) -> String {
        match self.direction {
            Direction::ReverseInfill => format!("{}.", self.units.join(" ")),
            _ => self.units.join(" "),
        }
    }
}

/// A generated corpus: entities, facts, training sentences and queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Corpus {
    /// The parameters it was generated from.
    pub config: CorpusConfig,
    /// Every entity name, in generation order (the candidates a rank is taken over).
    pub entities: Vec<String>,
    /// Every fact.
    pub facts: Vec<Fact>,
}

const ONSETS: [&str; 16] = [
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "br",
];
const VOWELS: [&str; 6] = ["a", "e", "i", "o", "u", "ae"];
const CODAS: [&str; 6] = ["", "", "n", "l", "r", "s"];

/// A made-up name of two or three syllables ("Zorvin"), capitalised.
fn make_name(rng: &mut impl Rng) -> String {
    let syllables = rng.gen_range(2..=3);
    let mut name = String::new();
    for _ in 0..syllables {
        name.push_str(ONSETS[rng.gen_range(0..ONSETS.len())]);
        name.push_str(VOWELS[rng.gen_range(0..VOWELS.len())]);
    }
    name.push_str(CODAS[rng.gen_range(0..CODAS.len())]);
    let mut chars = name.chars();
    let first = chars
        .next()
        .expect("a name has letters")
        .to_ascii_uppercase();
    std::iter::once(first).chain(chars).collect()
}

impl Corpus {
    /// Generates the corpus of `config` (deterministic in `config.seed`).
    pub fn generate(config: &CorpusConfig) -> Result<Corpus> {
        config.validate()?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed ^ 0x7e7e_25a1);
        let count = config.entity_count();
        let mut seen = HashSet::with_capacity(count);
        let mut entities = Vec::with_capacity(count);
        while entities.len() < count {
            let name = make_name(&mut rng);
            if seen.insert(name.clone()) {
                entities.push(name);
            }
        }
        let mut pool = entities.clone();
        pool.shuffle(&mut rng);
        let mut next = pool.into_iter();
        let mut take = || next.next().expect("entity_count covers every fact");
        let mut facts = Vec::new();
        for split in Split::ALL {
            for (relation, rel) in RELATIONS.iter().enumerate() {
                let mut push = |subject: String, object: String| {
                    facts.push(Fact {
                        id: facts.len(),
                        relation,
                        subject,
                        object,
                        split,
                    })
                };
                match rel.kind {
                    RelationKind::OneToOne => {
                        for _ in 0..config.pairs {
                            let (subject, object) = (take(), take());
                            push(subject, object);
                        }
                    }
                    RelationKind::ManyToOne => {
                        for _ in 0..config.fathers {
                            let father = take();
                            for _ in 0..config.children {
                                push(take(), father.clone());
                            }
                        }
                    }
                }
            }
        }
        Ok(Corpus {
            config: config.clone(),
            entities,
            facts,
        })
    }

    /// The forward sentence of `fact`: ["The father of", A, "is", B].
    pub fn forward_sentence(&self, fact: &Fact) -> Sentence {
        let rel = RELATIONS[fact.relation];
        Sentence {
            units: vec![
                format!("The {} of", rel.name),
                fact.subject.clone(),
                "is".to_string(),
                fact.object.clone(),
            ],
            fact: fact.id,
            direction: Direction::Forward,
        }
    }

    /// The reverse sentence of `fact`: ["The child of", B, "is", A].
    pub fn reverse_sentence(&self, fact: &Fact) -> Sentence {
        let rel = RELATIONS[fact.relation];
        Sentence {
            units: vec![
                format!("The {} of", rel.inverse),
                fact.object.clone(),
                "is".to_string(),
                fact.subject.clone(),
            ],
            fact: fact.id,
            direction: Direction::Reverse,
        }
    }

    /// The training set: the forward sentence of every [`Split::Both`] and [`Split::OneWay`]
    /// fact, and the reverse sentence of every [`Split::Both`] fact, in fact order.
    pub fn training_sentences(&self) -> Vec<Sentence> {
        let mut out = Vec::new();
        for fact in &self.facts {
            match fact.split {
                Split::Both => {
                    out.push(self.forward_sentence(fact));
                    out.push(self.reverse_sentence(fact));
                }
                Split::OneWay => out.push(self.forward_sentence(fact)),
                Split::HeldOut => {}
            }
        }
        out
    }

    /// The subjects that have `object` under `relation` (a father's children).
    fn subjects_of(&self, relation: usize, object: &str) -> Vec<String> {
        self.facts
            .iter()
            .filter(|f| f.relation == relation && f.object == object)
            .map(|f| f.subject.clone())
            .collect()
    }

    /// Every query: for each fact, forward, reverse, reverse-infill and reverse-order, in fact
    /// order.
    pub fn queries(&self) -> Vec<Query> {
        let mut out = Vec::with_capacity(3 * self.facts.len());
        for fact in &self.facts {
            let kind = RELATIONS[fact.relation].kind;
            let siblings = self.subjects_of(fact.relation, &fact.object);
            let query = |direction: Direction, units: Vec<String>, answer: &str| Query {
                fact: fact.id,
                split: fact.split,
                kind,
                direction,
                units,
                answer: answer.to_string(),
                accepted: if direction == Direction::Forward {
                    vec![answer.to_string()]
                } else {
                    siblings.clone()
                },
            };
            let mut forward = self.forward_sentence(fact).units;
            forward.pop();
            out.push(query(Direction::Forward, forward, &fact.object));
            let mut reverse = self.reverse_sentence(fact).units;
            reverse.pop();
            out.push(query(Direction::Reverse, reverse, &fact.subject));
            let mut infill = self.forward_sentence(fact).units;
            infill[1] = MASK_TEXT.to_string();
            out.push(query(Direction::ReverseInfill, infill, &fact.subject));
            let order = vec![fact.object.clone(), "is".to_string()];
            out.push(query(Direction::ReverseOrder, order, &fact.subject));
        }
        out
    }

    /// Writes the corpus as JSONL into `dir` (module docs of `spar lm data reversal` in
    /// `docs/reversal.md`): `corpus.json`, `entities.jsonl`, `facts.jsonl`, `train.jsonl`,
    /// `train.txt` (one sentence per line, for `spar lm pretrain`), `train-units.txt` (units
    /// separated by ` | `, for `spar lm spt`) and `queries.jsonl`. Returns the files written.
    pub fn write_jsonl(&self, dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
        use spar_core::atomic::write_atomic;
        std::fs::create_dir_all(dir).map_err(|e| LmError::io(dir, e))?;
        let lines = |values: Vec<serde_json::Value>| -> String {
            values.iter().map(|v| format!("{v}\n")).collect()
        };
        let train = self.training_sentences();
        let files: Vec<(&str, String)> = vec![
            (
                "corpus.json",
                serde_json::to_string_pretty(&serde_json::json!({
                    "config": self.config,
                    "relations": RELATIONS,
                    "entities": self.entities.len(),
                    "facts": self.facts.len(),
                    "training_sentences": train.len(),
                }))
                .expect("json"),
            ),
            (
                "entities.jsonl",
                lines(
                    self.entities
                        .iter()
                        .map(|e| serde_json::json!({ "name": e }))
                        .collect(),
                ),
            ),
            (
                "facts.jsonl",
                lines(
                    self.facts
                        .iter()
                        .map(|f| {
                            let mut v = serde_json::to_value(f).expect("json");
                            v["relation"] = RELATIONS[f.relation].name.into();
                            v["kind"] =
                                serde_json::to_value(RELATIONS[f.relation].kind).expect("json");
                            v
                        })
                        .collect(),
                ),
            ),
            (
                "train.jsonl",
                lines(
                    train
                        .iter()
                        .map(|s| {
                            serde_json::json!({
                                "text": s.text(), "units": s.units, "fact": s.fact,
                                "split": self.facts[s.fact].split, "direction": s.direction,
                            })
                        })
                        .collect(),
                ),
            ),
            (
                "train.txt",
                train.iter().map(|s| format!("{}\n", s.text())).collect(),
            ),
            (
                "train-units.txt",
                train
                    .iter()
                    .map(|s| format!("{}\n", s.units.join(crate::reversal::spt::UNIT_SEPARATOR)))
                    .collect(),
            ),
            (
                "queries.jsonl",
                lines(
                    self.queries()
                        .iter()
                        .map(|q| {
                            let mut v = serde_json::to_value(q).expect("json");
                            v["text"] = q.text().into();
                            v
                        })
                        .collect(),
                ),
            ),
        ];
        let mut written = Vec::new();
        for (name, text) in files {
            let path = dir.join(name);
            write_atomic(&path, text.as_bytes())?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> CorpusConfig {
        CorpusConfig {
            seed: 3,
            pairs: 5,
            fathers: 2,
            children: 3,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_corpus_and_another_seed_another() {
        let a = Corpus::generate(&small()).unwrap();
        let b = Corpus::generate(&small()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.queries(), b.queries());
        let c = Corpus::generate(&CorpusConfig { seed: 4, ..small() }).unwrap();
        assert_ne!(a.entities, c.entities);
    }

    #[test]
    fn sizes_follow_the_config_and_names_are_unique() {
        let corpus = Corpus::generate(&small()).unwrap();
        // Per split: 5 mentor pairs (10 entities) + 2 fathers with 3 children (8 entities).
        assert_eq!(corpus.entities.len(), 3 * (10 + 8));
        assert_eq!(corpus.facts.len(), 3 * (5 + 6));
        let unique: HashSet<&String> = corpus.entities.iter().collect();
        assert_eq!(unique.len(), corpus.entities.len());
        // Both: 11 facts, 2 sentences each; one-way: 11 facts, 1 sentence; held-out: none.
        assert_eq!(corpus.training_sentences().len(), 33);
        assert_eq!(corpus.queries().len(), 4 * corpus.facts.len());
    }

    #[test]
    fn splits_share_no_entity_and_held_out_entities_are_never_trained() {
        let corpus = Corpus::generate(&small()).unwrap();
        let entities_of = |split: Split| -> HashSet<String> {
            corpus
                .facts
                .iter()
                .filter(|f| f.split == split)
                .flat_map(|f| [f.subject.clone(), f.object.clone()])
                .collect()
        };
        let sets: Vec<HashSet<String>> = Split::ALL.iter().map(|&s| entities_of(s)).collect();
        for i in 0..sets.len() {
            for j in i + 1..sets.len() {
                assert!(sets[i].is_disjoint(&sets[j]), "splits {i} and {j} overlap");
            }
        }
        let trained: String = corpus
            .training_sentences()
            .iter()
            .map(|s| s.text())
            .collect::<Vec<_>>()
            .join(" ");
        for name in &sets[2] {
            let words: HashSet<&str> = trained
                .split(|c: char| !c.is_ascii_alphanumeric())
                .collect();
            assert!(!words.contains(name.as_str()), "{name} is trained");
        }
        // A one-way fact's reverse sentence is not trained; a both fact's is.
        let texts: HashSet<String> = corpus
            .training_sentences()
            .iter()
            .map(|s| s.text())
            .collect();
        for fact in &corpus.facts {
            let reverse = corpus.reverse_sentence(fact).text();
            assert_eq!(
                texts.contains(&reverse),
                fact.split == Split::Both,
                "{reverse}"
            );
        }
    }

    #[test]
    fn queries_read_as_documented() {
        let corpus = Corpus::generate(&small()).unwrap();
        let father = corpus.facts.iter().find(|f| f.relation == 1).unwrap();
        let queries: Vec<Query> = corpus
            .queries()
            .into_iter()
            .filter(|q| q.fact == father.id)
            .collect();
        let (a, b) = (&father.subject, &father.object);
        assert_eq!(queries[0].text(), format!("The father of {a} is"));
        assert_eq!(queries[0].accepted, vec![b.clone()]);
        assert_eq!(queries[1].text(), format!("The child of {b} is"));
        assert_eq!(queries[2].text(), format!("The father of [MASK] is {b}."));
        assert_eq!(queries[3].text(), format!("{b} is"));
        assert_eq!(queries[3].accepted, queries[1].accepted);
        // Reverse of a many-to-one fact: every child of the father is accepted.
        assert_eq!(queries[1].accepted.len(), 3);
        assert!(queries[1].accepted.contains(a));
    }
}
