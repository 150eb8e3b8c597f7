//! Tokenization: a WordPiece tokenizer from `tokenizer.json`, or one trained
//! on the training texts for an encoder trained from scratch, and the layout
//! of encoder inputs (`[CLS] x [SEP]` and `[CLS] x [SEP] d [SEP]`).

mod encode;
mod tokenizer;
mod vocabulary;

pub use encode::{EncodedPair, EncodedText, encode_pair, encode_text};
pub use tokenizer::{BertOptions, SPECIAL_TOKENS, SpecialIds, TextError, TextTokenizer};
