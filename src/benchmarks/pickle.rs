//! A minimal reader of Python pickles (protocols 2-5) for the NATS-Bench
//! archives: plain data (dicts, lists, tuples, numbers, strings, None,
//! booleans) and `collections.OrderedDict`, read as a dict. Written by hand
//! because `serde-pickle` cannot unpickle an `OrderedDict`, which the archives
//! use. Any other Python object is an error naming its class.

use crate::shown::shorten;
use anyhow::{bail, Context, Result};
use std::collections::HashMap;

/// A Python value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `bool`.
    Bool(bool),
    /// `int` (within i64).
    Int(i64),
    /// `float`.
    Float(f64),
    /// `str` (or `bytes`, lossily).
    Str(String),
    /// `list`.
    List(Vec<Value>),
    /// `tuple`.
    Tuple(Vec<Value>),
    /// `dict` / `OrderedDict`, in insertion order.
    Dict(Vec<(Value, Value)>),
}

impl Value {
    /// The entry of a dict with a string key.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items.iter().find(|(k, _)| matches!(k, Value::Str(s) if s == key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as a float (ints too).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// Arena node: containers refer to other nodes, so that a memoised container
/// filled later is seen filled (pickle's memo holds references).
#[derive(Debug, Clone)]
enum Node {
    Leaf(Value),
    List(Vec<usize>),
    Tuple(Vec<usize>),
    Dict(Vec<(usize, usize)>),
    Global(String),
    Mark,
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<usize>,
    memo: HashMap<u64, usize>,
}

impl<'a> Vm<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end =
            self.pos.checked_add(n).filter(|e| *e <= self.data.len()).context("pickle ends early (truncated file?)")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64> {
        Ok(self.take(n)?.iter().rev().fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }
    fn push(&mut self, n: Node) {
        self.nodes.push(n);
        self.stack.push(self.nodes.len() - 1);
    }
    fn pop(&mut self) -> Result<usize> {
        self.stack.pop().context("malformed pickle: stack underflow")
    }
    fn pop_mark(&mut self) -> Result<Vec<usize>> {
        let at = self
            .stack
            .iter()
            .rposition(|i| matches!(self.nodes[*i], Node::Mark))
            .context("malformed pickle: no mark")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items)
    }
    fn top(&self) -> Result<usize> {
        self.stack.last().copied().context("malformed pickle: empty stack")
    }
    fn string(&mut self, n: usize) -> Result<()> {
        let s = String::from_utf8_lossy(self.take(n)?).into_owned();
        self.push(Node::Leaf(Value::Str(s)));
        Ok(())
    }
    fn line(&mut self) -> Result<String> {
        let start = self.pos;
        while self.u8()? != b'\n' {}
        Ok(String::from_utf8_lossy(&self.data[start..self.pos - 1]).into_owned())
    }

    fn run(&mut self) -> Result<usize> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'}' => self.push(Node::Dict(Vec::new())),
                b']' => self.push(Node::List(Vec::new())),
                b')' => self.push(Node::Tuple(Vec::new())),
                b'(' => self.push(Node::Mark),
                b'N' => self.push(Node::Leaf(Value::None)),
                0x88 => self.push(Node::Leaf(Value::Bool(true))),
                0x89 => self.push(Node::Leaf(Value::Bool(false))),
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.push(Node::Leaf(Value::Int(i64::from(v))));
                }
                b'K' => {
                    let v = self.le(1)?;
                    self.push(Node::Leaf(Value::Int(v as i64)));
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.push(Node::Leaf(Value::Int(v as i64)));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    if n > 8 {
                        bail!("pickle holds an integer too large for 64 bits");
                    }
                    let mut v: i64 = 0;
                    for (i, b) in bytes.iter().enumerate() {
                        v |= i64::from(*b) << (8 * i);
                    }
                    if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Node::Leaf(Value::Int(v)));
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Node::Leaf(Value::Float(f64::from_be_bytes(a))));
                }
                0x8c | b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    self.string(n)?;
                }
                b'X' | b'T' | b'B' => {
                    let n = self.le(4)? as usize;
                    self.string(n)?;
                }
                0x8d | 0x8e => {
                    let n = self.le(8)? as usize;
                    self.string(n)?;
                }
                0x94 => {
                    let id = self.memo.len() as u64;
                    let top = self.top()?;
                    self.memo.insert(id, top);
                }
                b'q' | b'r' => {
                    let id = if op == b'q' { self.le(1)? } else { self.le(4)? };
                    let top = self.top()?;
                    self.memo.insert(id, top);
                }
                b'h' | b'j' => {
                    let id = if op == b'h' { self.le(1)? } else { self.le(4)? };
                    let node = *self.memo.get(&id).context("malformed pickle: unknown memo entry")?;
                    self.stack.push(node);
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let at = self.stack.len().checked_sub(n).context("malformed pickle: stack underflow")?;
                    let items = self.stack.split_off(at);
                    self.push(Node::Tuple(items));
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let v = self.pop()?;
                        let k = self.pop()?;
                        vec![k, v]
                    } else {
                        self.pop_mark()?
                    };
                    let d = self.top()?;
                    match &mut self.nodes[d] {
                        Node::Dict(entries) => {
                            entries.extend(items.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0], c[1])))
                        }
                        _ => bail!("malformed pickle: dict items for a non-dict"),
                    }
                }
                b'a' | b'e' => {
                    let items = if op == b'a' { vec![self.pop()?] } else { self.pop_mark()? };
                    let l = self.top()?;
                    match &mut self.nodes[l] {
                        Node::List(entries) => entries.extend(items),
                        _ => bail!("malformed pickle: list items for a non-list"),
                    }
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let s = |i: usize, n: &Vec<Node>| match &n[i] {
                        Node::Leaf(Value::Str(s)) => s.clone(),
                        _ => String::new(),
                    };
                    let g = format!("{}.{}", s(module, &self.nodes), s(name, &self.nodes));
                    self.push(Node::Global(g));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Node::Global(format!("{module}.{name}")));
                }
                b'R' => {
                    let _args = self.pop()?;
                    let f = self.pop()?;
                    match &self.nodes[f] {
                        Node::Global(g) if g == "collections.OrderedDict" => self.push(Node::Dict(Vec::new())),
                        Node::Global(g) => {
                            bail!("pickle holds a Python object of class {}, which rbflex does not read", shorten(g))
                        }
                        _ => bail!("malformed pickle: call of a non-class"),
                    }
                }
                other => bail!("pickle opcode 0x{other:02x} at byte {} is not supported", self.pos - 1),
            }
        }
    }

    /// The value of node `i`; `budget` counts down the values made, so that
    /// shared references (a memo entry used twice at every level) cannot
    /// expand a small pickle exponentially.
    fn value(&self, i: usize, depth: usize, budget: &mut usize) -> Result<Value> {
        if depth > 200 {
            bail!("pickle nests too deeply (a cycle?)");
        }
        if *budget == 0 {
            bail!("pickle expands to more than {MAX_VALUES} values (shared references?)");
        }
        *budget -= 1;
        let all = |ids: &[usize], budget: &mut usize| {
            ids.iter().map(|c| self.value(*c, depth + 1, budget)).collect::<Result<Vec<_>>>()
        };
        Ok(match &self.nodes[i] {
            Node::Leaf(v) => v.clone(),
            Node::List(ids) => Value::List(all(ids, budget)?),
            Node::Tuple(ids) => Value::Tuple(all(ids, budget)?),
            Node::Dict(kv) => {
                let mut out = Vec::with_capacity(kv.len());
                for (k, v) in kv {
                    out.push((self.value(*k, depth + 1, budget)?, self.value(*v, depth + 1, budget)?));
                }
                Value::Dict(out)
            }
            Node::Global(g) => bail!("pickle holds the class {} as a value", shorten(g)),
            Node::Mark => bail!("malformed pickle: stray mark"),
        })
    }
}

/// Most values one pickle may expand to.
pub const MAX_VALUES: usize = 50_000_000;

/// Unpickles `data`.
pub fn loads(data: &[u8]) -> Result<Value> {
    let mut vm = Vm { data, pos: 0, nodes: Vec::new(), stack: Vec::new(), memo: HashMap::new() };
    let root = vm.run()?;
    let mut budget = MAX_VALUES.min(vm.nodes.len().saturating_mul(64).max(1024));
    vm.value(root, 0, &mut budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_protocol_4_data_and_rejects_truncation() {
        // pickle.dumps({'a': [1, 2.5, None, True], ('x', 300): 'é'}, protocol=4)
        let bytes: &[u8] = b"\x80\x04\x95\x28\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x5d\x94\x28\x4b\x01\x47\x40\x04\x00\x00\x00\x00\x00\x00\x4e\x88\x65\x8c\x01\x78\x94\x4d\x2c\x01\x86\x94\x8c\x02\xc3\xa9\x94\x75\x2e";
        let v = loads(bytes).unwrap();
        assert_eq!(
            v.get("a"),
            Some(&Value::List(vec![Value::Int(1), Value::Float(2.5), Value::None, Value::Bool(true)]))
        );
        match &v {
            Value::Dict(items) => {
                assert_eq!(items[1].0, Value::Tuple(vec![Value::Str("x".into()), Value::Int(300)]));
                assert_eq!(items[1].1, Value::Str("é".into()));
            }
            other => panic!("{other:?}"),
        }
        let e = loads(&bytes[..20]).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
    }

    #[test]
    fn shared_references_cannot_expand_exponentially() {
        // L0 = []; L(k+1) = [Lk, Lk] through the memo, 60 levels: 2^60 values
        let mut b = vec![0x80, 2, b']', b'q', 0];
        for k in 0..60u8 {
            b.extend([b']', b'(', b'h', k, b'h', k, b'e', b'q', k + 1]);
        }
        b.push(b'.');
        let e = loads(&b).unwrap_err().to_string();
        assert!(e.contains("pickle expands to more than"), "{e}");
    }
}
