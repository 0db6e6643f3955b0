//! The pcapng blocks a capture writes (built in the capture thread of the test process):
//! a section header, an interface description per host, an enhanced packet per frame.
//! The format is the IETF draft "PCAP Now Generic (pcapng) Capture File Format"
//! (draft-ietf-opsawg-pcapng), as Wireshark, tshark and tcpdump read it; blocks are in the
//! host's byte order, which the section header's byte-order magic tells readers.

const SECTION_HEADER: u32 = 0x0a0d_0d0a;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const INTERFACE_DESCRIPTION: u32 = 1;
const ENHANCED_PACKET: u32 = 6;
const LINKTYPE_ETHERNET: u16 = 1;

const OPT_END: u16 = 0;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_DESCRIPTION: u16 = 3;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;

/// Which way a frame crossed the host's link, seen from the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Way {
    /// The host received it.
    Received,
    /// The host sent it.
    Sent,
}

/// The section header that starts the file: version 1.0, length unknown.
pub(super) fn section_header() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&BYTE_ORDER_MAGIC.to_ne_bytes());
    body.extend_from_slice(&1u16.to_ne_bytes());
    body.extend_from_slice(&0u16.to_ne_bytes());
    body.extend_from_slice(&(-1i64).to_ne_bytes());
    option(&mut body, SHB_USERAPPL, b"nstest");
    option(&mut body, OPT_END, &[]);
    block(SECTION_HEADER, &body)
}

/// An Ethernet interface named `name` (shown by Wireshark in its interface column), with
/// nanosecond timestamps.
pub(super) fn interface(name: &str, description: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&LINKTYPE_ETHERNET.to_ne_bytes());
    body.extend_from_slice(&0u16.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes()); // snap length: none
    option(&mut body, IF_NAME, name.as_bytes());
    option(&mut body, IF_DESCRIPTION, description.as_bytes());
    option(&mut body, IF_TSRESOL, &[9]);
    option(&mut body, OPT_END, &[]);
    block(INTERFACE_DESCRIPTION, &body)
}

/// One frame on interface `interface` (the index of its description block), at
/// `nanos` since the Unix epoch; `original` is its length on the wire.
pub(super) fn packet(
    interface: u32,
    nanos: u64,
    frame: &[u8],
    original: usize,
    way: Way,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(frame.len() + 40);
    body.extend_from_slice(&interface.to_ne_bytes());
    body.extend_from_slice(&((nanos >> 32) as u32).to_ne_bytes());
    body.extend_from_slice(&(nanos as u32).to_ne_bytes());
    body.extend_from_slice(&(frame.len() as u32).to_ne_bytes());
    body.extend_from_slice(&(original as u32).to_ne_bytes());
    pad_into(&mut body, frame);
    let flags: u32 = match way {
        Way::Received => 1,
        Way::Sent => 2,
    };
    option(&mut body, EPB_FLAGS, &flags.to_ne_bytes());
    option(&mut body, OPT_END, &[]);
    block(ENHANCED_PACKET, &body)
}

fn option(body: &mut Vec<u8>, code: u16, value: &[u8]) {
    body.extend_from_slice(&code.to_ne_bytes());
    body.extend_from_slice(&(value.len() as u16).to_ne_bytes());
    pad_into(body, value);
}

fn pad_into(body: &mut Vec<u8>, bytes: &[u8]) {
    body.extend_from_slice(bytes);
    body.resize(body.len().next_multiple_of(4), 0);
}

/// A block: type, total length, body, total length again.
fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let total = (12 + body.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&total.to_ne_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&total.to_ne_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// The blocks of a file as (type, body), checking both lengths of each.
    fn blocks(mut file: &[u8]) -> Vec<(u32, Vec<u8>)> {
        let mut out = Vec::new();
        while !file.is_empty() {
            let (kind, len) = (word(file, 0), word(file, 4) as usize);
            assert_eq!(len % 4, 0);
            assert_eq!(word(file, len - 4) as usize, len, "trailing length");
            out.push((kind, file[8..len - 4].to_vec()));
            file = &file[len..];
        }
        out
    }

    #[test]
    fn a_file_reads_back_as_its_blocks_with_names_and_payloads() {
        let mut file = section_header();
        file.extend(interface("a", "host a"));
        file.extend(interface("bb", "host bb"));
        let frame = b"0123456789abcdefghij-payload";
        file.extend(packet(
            1,
            1_700_000_000_123_456_789,
            frame,
            60,
            Way::Received,
        ));
        let b = blocks(&file);
        assert_eq!(b.len(), 4);
        assert_eq!(b[0].0, SECTION_HEADER);
        assert_eq!(word(&b[0].1, 0), BYTE_ORDER_MAGIC);
        assert_eq!(b[1].0, INTERFACE_DESCRIPTION);
        // Options after linktype, reserved, snaplen: if_name first.
        let idb = &b[2].1;
        assert_eq!(u16::from_ne_bytes([idb[8], idb[9]]), IF_NAME);
        assert_eq!(&idb[12..14], b"bb");
        let epb = &b[3].1;
        assert_eq!(word(epb, 0), 1, "interface");
        let nanos = (u64::from(word(epb, 4)) << 32) | u64::from(word(epb, 8));
        assert_eq!(nanos, 1_700_000_000_123_456_789);
        assert_eq!((word(epb, 12), word(epb, 16)), (frame.len() as u32, 60));
        assert_eq!(&epb[20..20 + frame.len()], frame);
        let flags_at = 20 + frame.len().next_multiple_of(4);
        assert_eq!(
            u16::from_ne_bytes([epb[flags_at], epb[flags_at + 1]]),
            EPB_FLAGS
        );
        assert_eq!(word(epb, flags_at + 4), 1, "inbound");
    }
}
