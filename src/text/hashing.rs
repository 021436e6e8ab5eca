//! A model-free multilingual text featurizer: character n-grams of words, hashed into buckets.
//!
//! Words come from Unicode word segmentation (UAX #29), which keeps Devanagari, Bengali and
//! Tamil vowel signs attached to their letters, so the same code serves every script in the
//! challenge. Each word contributes itself and its character n-grams (with `<` `>` boundary
//! marks, as in fastText); a second hash bit gives each feature a sign so that collisions
//! cancel out on average instead of piling up. Rows are L2-normalised.

use unicode_segmentation::UnicodeSegmentation;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::data::Matrix;

/// Seeds keep word features and n-gram features in different hash streams.
const WORD_SEED: u64 = 0x5eed_0001;
const NGRAM_SEED: u64 = 0x5eed_0002;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingFeaturizer {
    pub dim: usize,
    pub ngram_min: usize,
    pub ngram_max: usize,
}

impl HashingFeaturizer {
    pub fn featurize(&self, text: &str) -> Vec<f32> {
        let mut features = vec![0.0f32; self.dim];
        let lowered = text.to_lowercase();
        for word in lowered.unicode_words() {
            self.add(&mut features, word.as_bytes(), WORD_SEED);
            let chars: Vec<char> =
                std::iter::once('<').chain(word.chars()).chain(std::iter::once('>')).collect();
            for n in self.ngram_min..=self.ngram_max.min(chars.len()) {
                for window in chars.windows(n) {
                    let gram: String = window.iter().collect();
                    self.add(&mut features, gram.as_bytes(), NGRAM_SEED);
                }
            }
        }
        l2_normalize(&mut features);
        features
    }

    pub fn featurize_all(&self, texts: &[String]) -> Matrix {
        let mut data = Vec::with_capacity(texts.len() * self.dim);
        for text in texts {
            data.extend(self.featurize(text));
        }
        Matrix::new(texts.len(), self.dim, data)
    }

    fn add(&self, features: &mut [f32], token: &[u8], seed: u64) {
        let hash = xxh3_64_with_seed(token, seed);
        let bucket = (hash % self.dim as u64) as usize;
        let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        features[bucket] += sign;
    }
}

fn l2_normalize(values: &mut [f32]) {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        values.iter_mut().for_each(|v| *v /= norm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn featurizer() -> HashingFeaturizer {
        HashingFeaturizer { dim: 256, ngram_min: 3, ngram_max: 5 }
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn rows_are_unit_length_for_every_script() {
        for text in ["डॉक्टर से पूछें", "மருத்துவரை அணுகவும்", "ডাক্তারের পরামর্শ নিন", "Ask a doctor"]
        {
            let v = featurizer().featurize(text);
            assert!((cosine(&v, &v) - 1.0).abs() < 1e-5, "{text}");
        }
    }

    #[test]
    fn empty_text_is_the_zero_vector() {
        assert!(featurizer().featurize("  ").iter().all(|&v| v == 0.0));
    }

    #[test]
    fn shared_words_make_texts_similar() {
        let f = featurizer();
        let a = f.featurize("बैंक खाता खोलना है");
        let b = f.featurize("बैंक खाता बंद करना है");
        let c = f.featurize("மருத்துவர் மருந்து");
        assert!(cosine(&a, &b) > 0.4, "related Hindi texts: {}", cosine(&a, &b));
        assert!(cosine(&a, &c).abs() < 0.2, "Hindi vs Tamil: {}", cosine(&a, &c));
    }

    #[test]
    fn features_are_deterministic_and_case_insensitive() {
        let f = featurizer();
        assert_eq!(f.featurize("Doctor"), f.featurize("doctor"));
    }
}
