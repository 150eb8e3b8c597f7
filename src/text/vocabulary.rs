//! A deterministic WordPiece vocabulary built from a corpus.
//!
//! The WordPiece trainer of tokenizers 0.23 breaks ties between equally
//! frequent merges in hash-map order, so two runs on the same corpus give
//! different vocabularies and the same seed would give different models.
//! This builder ranks by frequency and breaks ties by the token's text.
//!
//! The vocabulary contains the special tokens, every character of the corpus
//! (and its `##` continuation form where a character occurs inside a
//! word), then whole words seen at least twice, most frequent first. A word
//! outside the vocabulary is split into characters, so no character seen in
//! training becomes `[UNK]` unless the size limit leaves it out.

use std::collections::{BTreeMap, BTreeSet};

use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::{Normalizer, OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer};

use super::tokenizer::{SPECIAL_TOKENS, TextError};

/// Minimum count for a whole word to enter the vocabulary.
const MIN_WORD_COUNT: u64 = 2;

/// Splits a text into words the way the tokenizer will: BERT normalisation
/// (lower-casing, accents stripped, CJK characters split), then whitespace
/// and punctuation splitting.
pub fn words(normalizer: &BertNormalizer, text: &str) -> Result<Vec<String>, TextError> {
    let error = |e: tokenizers::Error| TextError::Train(e.to_string());
    let mut pretokenized = PreTokenizedString::from(text);
    pretokenized.normalize(|s| normalizer.normalize(s)).map_err(error)?;
    BertPreTokenizer.pre_tokenize(&mut pretokenized).map_err(error)?;
    Ok(pretokenized
        .get_splits(OffsetReferential::Original, OffsetType::Byte)
        .into_iter()
        .map(|(word, _, _)| word.to_string())
        .collect())
}

/// Returns the tokens of the vocabulary in id order, at most `vocab_size`.
pub fn build_vocabulary<I, S>(normalizer: &BertNormalizer, corpus: I, vocab_size: usize) -> Result<Vec<String>, TextError>
where
    I: Iterator<Item = S>,
    S: AsRef<str>,
{
    let mut word_counts: BTreeMap<String, u64> = BTreeMap::new();
    for text in corpus {
        for word in words(normalizer, text.as_ref())? {
            *word_counts.entry(word).or_default() += 1;
        }
    }
    let mut char_counts: BTreeMap<char, u64> = BTreeMap::new();
    let mut continuation_chars: BTreeSet<char> = BTreeSet::new();
    for (word, count) in &word_counts {
        for (position, c) in word.chars().enumerate() {
            *char_counts.entry(c).or_default() += count;
            if position > 0 {
                continuation_chars.insert(c);
            }
        }
    }

    let mut tokens: Vec<String> = SPECIAL_TOKENS.iter().map(|t| t.to_string()).collect();
    let mut chars: Vec<(char, u64)> = char_counts.into_iter().collect();
    chars.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (c, _) in &chars {
        tokens.push(c.to_string());
    }
    for (c, _) in &chars {
        if continuation_chars.contains(c) {
            tokens.push(format!("##{c}"));
        }
    }
    let mut frequent: Vec<(&String, &u64)> = word_counts
        .iter()
        .filter(|(word, count)| **count >= MIN_WORD_COUNT && word.chars().count() > 1)
        .collect();
    frequent.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    tokens.extend(frequent.into_iter().map(|(word, _)| word.clone()));
    tokens.truncate(vocab_size.max(SPECIAL_TOKENS.len()));
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalizer() -> BertNormalizer {
        BertNormalizer::new(true, true, None, true)
    }

    #[test]
    fn vocabulary_ranks_characters_then_frequent_words() {
        let corpus = ["the card, the card", "my card", "银行卡"];
        let tokens = build_vocabulary(&normalizer(), corpus.iter(), 100).unwrap();
        assert_eq!(&tokens[..5], &SPECIAL_TOKENS.map(String::from));
        // "c" occurs 3 times (card ×3), as does "a", "r", "d"; "e" and "t" twice.
        assert!(tokens.contains(&"银".to_string()));
        assert!(tokens.contains(&"##d".to_string()));
        assert!(!tokens.contains(&"##银".to_string()), "CJK characters are words of their own");
        assert!(tokens.contains(&"card".to_string()));
        assert!(tokens.contains(&"the".to_string()));
        assert!(!tokens.contains(&"my".to_string()), "words seen once are left out");
    }

    #[test]
    fn vocabulary_is_cut_to_size() {
        let tokens = build_vocabulary(&normalizer(), ["abc abc"].iter(), 7).unwrap();
        assert_eq!(tokens.len(), 7);
        assert_eq!(&tokens[5..], &["a".to_string(), "b".to_string()]);
    }
}
