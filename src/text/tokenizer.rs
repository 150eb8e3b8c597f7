//! WordPiece tokenizer behind the `tokenizers` crate.

use std::path::{Path, PathBuf};

use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Tokenizer};

use super::vocabulary::build_vocabulary;

/// Special tokens of a trained vocabulary, in id order (0..5).
pub const SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("failed to load tokenizer {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("failed to save tokenizer {path}: {message}")]
    Save { path: PathBuf, message: String },
    #[error("failed to train the WordPiece vocabulary: {0}")]
    Train(String),
    #[error("tokenizer has no {0} token")]
    MissingSpecialToken(&'static str),
    #[error("failed to tokenize text: {0}")]
    Encode(String),
}

/// Text normalisation of a BERT tokenizer, as `tokenizer_config.json` states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BertOptions {
    pub lowercase: bool,
    /// `None` strips accents exactly when lower-casing, as BERT does.
    pub strip_accents: Option<bool>,
    /// Splits CJK ideographs into one token each.
    pub split_chinese: bool,
}

impl Default for BertOptions {
    fn default() -> Self {
        Self {
            lowercase: true,
            strip_accents: None,
            split_chinese: true,
        }
    }
}

/// Ids of the special tokens the encoder inputs need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialIds {
    pub pad: u32,
    pub unk: u32,
    pub cls: u32,
    pub sep: u32,
    pub mask: u32,
}

/// A BERT-style WordPiece tokenizer: lower-casing, CJK characters split one
/// per token by the normalizer, whitespace and punctuation splitting.
#[derive(Clone)]
pub struct TextTokenizer {
    tokenizer: Tokenizer,
    special: SpecialIds,
}

impl TextTokenizer {
    /// Builds a WordPiece tokenizer whose vocabulary of at most `vocab_size`
    /// tokens comes from `corpus`; the same corpus gives the same tokenizer.
    pub fn train_wordpiece<I, S>(corpus: I, vocab_size: usize) -> Result<Self, TextError>
    where
        I: Iterator<Item = S>,
        S: AsRef<str>,
    {
        let normalizer = BertNormalizer::new(true, true, None, true);
        let tokens = build_vocabulary(&normalizer, corpus, vocab_size)?;

        let vocab: serde_json::Map<String, serde_json::Value> = tokens
            .into_iter()
            .enumerate()
            .map(|(id, token)| (token, serde_json::Value::from(id)))
            .collect();
        // WordPiece's deserializer borrows strings, so it reads from text.
        let definition = serde_json::json!({
            "type": "WordPiece",
            "unk_token": "[UNK]",
            "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": vocab,
        })
        .to_string();
        let model: WordPiece = serde_json::from_str(&definition).map_err(|e| TextError::Train(e.to_string()))?;

        let mut tokenizer = Tokenizer::new(model);
        tokenizer
            .with_normalizer(Some(normalizer))
            .map_err(|e| TextError::Train(e.to_string()))?;
        tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
        tokenizer.with_decoder(Some(WordPieceDecoder::default()));
        Self::finish_bert(tokenizer)
    }

    /// Loads a tokenizer from a `tokenizer.json` file. Padding and
    /// truncation stored in the file are dropped: inputs are laid out and
    /// cut by [`encode_text`](super::encode_text) and padded per batch.
    pub fn from_file(path: &Path) -> Result<Self, TextError> {
        let mut tokenizer = Tokenizer::from_file(path).map_err(|e| TextError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(None)
            .map_err(|e| TextError::Load {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let special = special_ids(&tokenizer)?;
        Ok(Self { tokenizer, special })
    }

    /// Builds a BERT tokenizer from a `vocab.txt` file (one token per line,
    /// the line number is the id) and its normalisation options.
    pub fn from_vocab(path: &Path, options: BertOptions) -> Result<Self, TextError> {
        let load_error = |message: String| TextError::Load {
            path: path.to_path_buf(),
            message,
        };
        let file = path.to_str().ok_or_else(|| load_error("the path is not UTF-8".to_string()))?;
        let model = WordPiece::from_file(file)
            .unk_token("[UNK]".to_string())
            .continuing_subword_prefix("##".to_string())
            .max_input_chars_per_word(100)
            .build()
            .map_err(|e| load_error(e.to_string()))?;
        let normalizer = BertNormalizer::new(true, options.split_chinese, options.strip_accents, options.lowercase);
        let mut tokenizer = Tokenizer::new(model);
        tokenizer
            .with_normalizer(Some(normalizer))
            .map_err(|e| load_error(e.to_string()))?;
        tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
        tokenizer.with_decoder(Some(WordPieceDecoder::default()));
        Self::finish_bert(tokenizer).map_err(|e| match e {
            TextError::Train(message) => load_error(message),
            other => other,
        })
    }

    /// Marks the special tokens as such and adds the `[CLS] x [SEP]`
    /// post-processor.
    fn finish_bert(mut tokenizer: Tokenizer) -> Result<Self, TextError> {
        let special_tokens: Vec<AddedToken> = SPECIAL_TOKENS
            .iter()
            .map(|token| AddedToken::from(*token, true))
            .collect();
        tokenizer
            .add_special_tokens(special_tokens)
            .map_err(|e| TextError::Train(e.to_string()))?;
        let special = special_ids(&tokenizer)?;
        tokenizer.with_post_processor(Some(BertProcessing::new(
            ("[SEP]".to_string(), special.sep),
            ("[CLS]".to_string(), special.cls),
        )));
        Ok(Self { tokenizer, special })
    }

    /// Returns the normalisation options of a BERT normaliser, or the
    /// defaults where the tokenizer has another kind.
    pub fn bert_options(&self) -> BertOptions {
        let Some(normalizer) = self.tokenizer.get_normalizer() else {
            return BertOptions::default();
        };
        let Ok(value) = serde_json::to_value(normalizer) else {
            return BertOptions::default();
        };
        if value.get("type").and_then(|t| t.as_str()) != Some("BertNormalizer") {
            return BertOptions::default();
        }
        BertOptions {
            lowercase: value.get("lowercase").and_then(|v| v.as_bool()).unwrap_or(true),
            strip_accents: value.get("strip_accents").and_then(|v| v.as_bool()),
            split_chinese: value.get("handle_chinese_chars").and_then(|v| v.as_bool()).unwrap_or(true),
        }
    }

    /// Returns the tokens in id order, as `vocab.txt` lists them (line `n` is
    /// id `n`). An id that no token has becomes `[unusedN]`.
    pub fn vocabulary(&self) -> Vec<String> {
        let vocab = self.tokenizer.get_vocab(true);
        let size = vocab.values().map(|&id| id as usize + 1).max().unwrap_or(0);
        let mut tokens: Vec<String> = (0..size).map(|id| format!("[unused{id}]")).collect();
        for (token, id) in vocab {
            tokens[id as usize] = token;
        }
        tokens
    }

    /// Writes the tokenizer as `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<(), TextError> {
        self.tokenizer.save(path, false).map_err(|e| TextError::Save {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    pub fn special(&self) -> SpecialIds {
        self.special
    }

    /// Returns the token ids of `text` without special tokens.
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>, TextError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| TextError::Encode(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Returns the token strings of `text`, for tests and diagnostics.
    pub fn tokens(&self, text: &str) -> Result<Vec<String>, TextError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| TextError::Encode(e.to_string()))?;
        Ok(encoding.get_tokens().to_vec())
    }
}

fn special_ids(tokenizer: &Tokenizer) -> Result<SpecialIds, TextError> {
    let id = |token: &'static str| {
        tokenizer
            .token_to_id(token)
            .ok_or(TextError::MissingSpecialToken(token))
    };
    Ok(SpecialIds {
        pad: id("[PAD]")?,
        unk: id("[UNK]")?,
        cls: id("[CLS]")?,
        sep: id("[SEP]")?,
        mask: id("[MASK]")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<&'static str> {
        vec![
            "我的银行卡丢了",
            "银行卡还没有到",
            "Where is my card?",
            "my card has not arrived",
            "card arrival",
            "news_story",
        ]
    }

    #[test]
    fn chinese_characters_split_one_per_token() {
        let tokenizer = TextTokenizer::train_wordpiece(corpus().into_iter(), 200).unwrap();
        let tokens = tokenizer.tokens("我的银行卡丢了").unwrap();
        assert_eq!(tokens, vec!["我", "的", "银", "行", "卡", "丢", "了"]);
    }

    #[test]
    fn special_tokens_take_first_ids() {
        let tokenizer = TextTokenizer::train_wordpiece(corpus().into_iter(), 200).unwrap();
        let special = tokenizer.special();
        assert_eq!(special.pad, 0);
        assert_eq!(special.unk, 1);
        assert_eq!(special.cls, 2);
        assert_eq!(special.sep, 3);
        assert_eq!(special.mask, 4);
    }

    #[test]
    fn english_is_lowercased() {
        let tokenizer = TextTokenizer::train_wordpiece(corpus().into_iter(), 200).unwrap();
        let upper = tokenizer.tokenize("CARD").unwrap();
        let lower = tokenizer.tokenize("card").unwrap();
        assert_eq!(upper, lower);
    }

    #[test]
    fn unseen_character_maps_to_unk() {
        let tokenizer = TextTokenizer::train_wordpiece(corpus().into_iter(), 200).unwrap();
        let unknown = tokenizer.tokenize("😀").unwrap();
        assert_eq!(unknown, vec![tokenizer.special().unk]);
    }

    #[test]
    fn training_is_deterministic() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo/train.csv");
        let corpus = std::fs::read_to_string(path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut saved = Vec::new();
        for run in 0..3 {
            let tokenizer = TextTokenizer::train_wordpiece(corpus.lines(), 500).unwrap();
            let file = dir.path().join(format!("{run}.json"));
            tokenizer.save(&file).unwrap();
            saved.push(std::fs::read_to_string(&file).unwrap());
        }
        assert_eq!(saved[0], saved[1]);
        assert_eq!(saved[0], saved[2]);
    }

    #[test]
    fn saved_tokenizer_loads_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let tokenizer = TextTokenizer::train_wordpiece(corpus().into_iter(), 200).unwrap();
        tokenizer.save(&path).unwrap();
        let loaded = TextTokenizer::from_file(&path).unwrap();
        for text in corpus() {
            assert_eq!(tokenizer.tokenize(text).unwrap(), loaded.tokenize(text).unwrap());
        }
        assert_eq!(loaded.special(), tokenizer.special());
    }
}
