//! Finds the fenced blocks of a markdown file by info string, and reads their hex: shared by
//! the tests that check PROTOCOL.md's vectors (included with `#[path]` from both crates' tests).

/// One fenced block: the line number of its opening fence (1-based) and its body lines.
pub(crate) struct Block<'a> {
    pub(crate) line_number: usize,
    pub(crate) lines: Vec<&'a str>,
}

/// The fenced blocks of `markdown` whose info string is exactly `info`. Other fences are
/// tracked too, so that an example inside another block is never mistaken for a vector.
pub(crate) fn blocks<'a>(markdown: &'a str, info: &str) -> Vec<Block<'a>> {
    let mut found = Vec::new();
    let mut open: Option<(bool, Block<'a>)> = None;
    for (index, line) in markdown.lines().enumerate() {
        match &mut open {
            None => {
                if let Some(fence_info) = line.strip_prefix("```") {
                    let block = Block { line_number: index + 1, lines: Vec::new() };
                    open = Some((fence_info.trim() == info, block));
                }
            }
            Some((wanted, block)) => {
                if line.trim_end() == "```" {
                    let (wanted, block) = open.take().expect("a block is open in this arm");
                    if wanted {
                        found.push(block);
                    }
                } else if *wanted {
                    block.lines.push(line);
                }
            }
        }
    }
    assert!(open.is_none(), "PROTOCOL.md ends inside a fenced block");
    found
}

/// Bytes written as space-separated two-digit hex pairs; `XX*N` stands for the byte `XX`
/// written `N` times.
pub(crate) fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    for token in text.split_whitespace() {
        // `00*32`: the byte 0x00 32 times.
        let (pair, count) = match token.split_once('*') {
            Some((pair, count)) => {
                (pair, count.parse::<usize>().map_err(|error| format!("repeat count in {token:?}: {error}"))?)
            }
            None => (token, 1),
        };
        if pair.len() != 2 {
            return Err(format!("hex byte {pair:?} is not two digits"));
        }
        let byte = u8::from_str_radix(pair, 16).map_err(|error| format!("hex byte {pair:?}: {error}"))?;
        bytes.extend(std::iter::repeat_n(byte, count));
    }
    Ok(bytes)
}
