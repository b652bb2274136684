//! A small namespace-resolved element tree, read with `quick-xml` under size, depth and count limits, and
//! written back with the package's namespace prefixes.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{IntIError, MAX_DEPTH, MAX_ELEMENTS, MAX_XML_BYTES, NAMESPACES};

/// An element: namespace URI, local name, text content (trimmed) and children in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Element {
    pub ns: String,
    pub name: String,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// An element in namespace `ns` (a URI).
    pub(crate) fn new(ns: &str, name: &str) -> Self {
        Self {
            ns: ns.to_owned(),
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Appends a child and returns it for filling.
    pub(crate) fn child(&mut self, ns: &str, name: &str) -> &mut Element {
        self.children.push(Element::new(ns, name));
        let last = self.children.len() - 1;
        &mut self.children[last]
    }

    /// Appends a child holding `text`.
    pub(crate) fn leaf(&mut self, ns: &str, name: &str, text: impl Into<String>) -> &mut Self {
        self.child(ns, name).text = text.into();
        self
    }

    /// The first child with this namespace and name.
    pub(crate) fn find(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.ns == ns && c.name == name)
    }

    /// All children with this namespace and name.
    pub(crate) fn find_all<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children
            .iter()
            .filter(move |c| c.ns == ns && c.name == name)
    }

    /// Follows a path of `(namespace, name)` steps, taking the first match at each.
    pub(crate) fn path(&self, steps: &[(&str, &str)]) -> Option<&Element> {
        steps
            .iter()
            .try_fold(self, |e, (ns, name)| e.find(ns, name))
    }

    /// The trimmed text at the end of a path, if present and not empty.
    pub(crate) fn text_at(&self, steps: &[(&str, &str)]) -> Option<String> {
        self.path(steps)
            .map(|e| e.text.clone())
            .filter(|t| !t.is_empty())
    }
}

/// Parses an XML document into its root element.
pub(crate) fn parse(xml: &[u8]) -> Result<Element, IntIError> {
    if xml.len() > MAX_XML_BYTES {
        return Err(IntIError::TooLarge {
            len: xml.len(),
            max: MAX_XML_BYTES,
        });
    }
    let text = std::str::from_utf8(xml).map_err(|e| IntIError::Xml {
        offset: e.valid_up_to(),
        reason: "not UTF-8".into(),
    })?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut count = 0usize;
    loop {
        let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let xml_error = |reason: String| IntIError::Xml { offset, reason };
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| xml_error(e.to_string()))?;
        match event {
            Event::Start(start) => {
                count += 1;
                if stack.len() >= MAX_DEPTH {
                    return Err(IntIError::TooDeep {
                        offset,
                        max: MAX_DEPTH,
                    });
                }
                stack.push(open(&ns, &start, offset)?);
            }
            Event::Empty(start) => {
                count += 1;
                let element = open(&ns, &start, offset)?;
                if let Some(root) = close(&mut stack, element) {
                    return finish(root, &mut reader);
                }
            }
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| xml_error("unmatched end tag".into()))?;
                if let Some(root) = close(&mut stack, finished(element)) {
                    return finish(root, &mut reader);
                }
            }
            Event::Text(t) => append(&mut stack, &t.xml10_content()),
            Event::CData(c) => append(&mut stack, &c.xml10_content()),
            Event::GeneralRef(r) => append(&mut stack, &entity(&r, offset)?),
            Event::DocType(_) => {
                return Err(xml_error("DOCTYPE declarations are not accepted".into()));
            }
            Event::Eof => {
                return Err(xml_error(
                    "the document ends before its root element closes".into(),
                ));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
        if count > MAX_ELEMENTS {
            return Err(IntIError::TooManyElements { max: MAX_ELEMENTS });
        }
    }
}

fn open(
    ns: &ResolveResult<'_>,
    start: &BytesStart<'_>,
    offset: usize,
) -> Result<Element, IntIError> {
    let ns = match ns {
        ResolveResult::Bound(ns) => ns.0.to_owned(),
        ResolveResult::Unbound => String::new(),
        ResolveResult::Unknown(prefix) => {
            return Err(IntIError::Xml {
                offset,
                reason: format!("namespace prefix {prefix:?} is not declared"),
            });
        }
    };
    let name = AsRef::<str>::as_ref(&start.local_name()).to_owned();
    Ok(Element {
        ns,
        name,
        ..Element::default()
    })
}

fn finished(mut element: Element) -> Element {
    let trimmed = element.text.trim();
    if trimmed.len() != element.text.len() {
        element.text = trimmed.to_owned();
    }
    element
}

/// Attaches a finished element to its parent; returns it if it is the root.
fn close(stack: &mut [Element], element: Element) -> Option<Element> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(element);
            None
        }
        None => Some(element),
    }
}

fn finish(root: Element, reader: &mut NsReader<&[u8]>) -> Result<Element, IntIError> {
    loop {
        let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        match reader.read_event() {
            Ok(Event::Eof) => return Ok(root),
            Ok(Event::Comment(_) | Event::PI(_)) => {}
            Ok(Event::Text(t)) if t.xml10_content().trim().is_empty() => {}
            Ok(_) => {
                return Err(IntIError::Xml {
                    offset,
                    reason: "content after the root element".into(),
                });
            }
            Err(e) => {
                return Err(IntIError::Xml {
                    offset,
                    reason: e.to_string(),
                });
            }
        }
    }
}

fn append(stack: &mut [Element], text: &str) {
    if let Some(top) = stack.last_mut() {
        top.text.push_str(text);
    }
}

fn entity(r: &quick_xml::events::BytesRef<'_>, offset: usize) -> Result<String, IntIError> {
    let named = match &**r {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    };
    let c = match named {
        Some(c) => Some(c),
        None => r.resolve_char_ref().map_err(|e| IntIError::Xml {
            offset,
            reason: e.to_string(),
        })?,
    };
    c.map(String::from).ok_or_else(|| IntIError::Xml {
        offset,
        reason: format!("undefined entity &{};", &**r),
    })
}

/// Serialises `root` with the package's prefixes (`itl`, `biom`, `nc`, `int-i`) declared on it.
pub(crate) fn write(root: &Element) -> Result<String, IntIError> {
    let mut writer = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    let io = |e: std::io::Error| IntIError::Write(e.to_string());
    writer
        .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))
        .map_err(io)?;
    write_element(&mut writer, root, true)?;
    String::from_utf8(writer.into_inner()).map_err(|e| IntIError::Write(e.to_string()))
}

fn qualified(e: &Element) -> Result<String, IntIError> {
    let prefix = NAMESPACES
        .iter()
        .find(|(_, uri)| *uri == e.ns)
        .map(|(p, _)| *p)
        .ok_or_else(|| IntIError::Write(format!("no prefix for namespace {:?}", e.ns)))?;
    Ok(format!("{prefix}:{}", e.name))
}

fn write_element(
    writer: &mut quick_xml::Writer<Vec<u8>>,
    e: &Element,
    root: bool,
) -> Result<(), IntIError> {
    let io = |e: std::io::Error| IntIError::Write(e.to_string());
    let name = qualified(e)?;
    let mut start = BytesStart::new(name.as_str());
    if root {
        for (prefix, uri) in NAMESPACES {
            start.push_attribute((format!("xmlns:{prefix}").as_str(), *uri));
        }
    }
    if e.children.is_empty() && e.text.is_empty() {
        return writer.write_event(Event::Empty(start)).map_err(io);
    }
    writer.write_event(Event::Start(start)).map_err(io)?;
    if !e.text.is_empty() {
        writer
            .write_event(Event::Text(BytesText::new(&e.text)))
            .map_err(io)?;
    }
    for child in &e.children {
        write_element(writer, child, false)?;
    }
    writer
        .write_event(Event::End(BytesEnd::new(name.as_str())))
        .map_err(io)
}
