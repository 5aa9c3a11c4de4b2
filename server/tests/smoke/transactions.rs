//! The transaction status ReadyForQuery reports (`I`, `T`, `E`), read off the wire,
//! over the simple and the extended protocol: drivers decide from it whether to send
//! BEGIN or ROLLBACK, and psql shows it in its prompt.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::Server;

/// One backend message: its type byte and body.
type Message = (u8, Vec<u8>);

struct Wire {
    socket: TcpStream,
    buffer: Vec<u8>,
}

impl Wire {
    fn connect(port: u16) -> Wire {
        let socket = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut wire = Wire {
            socket,
            buffer: Vec::new(),
        };
        let mut body = 196_608u32.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0wasmudf\0database\0wasmudf\0\0");
        let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        packet.extend(body);
        wire.socket.write_all(&packet).expect("startup");
        assert_eq!(wire.until_ready().0, b'I');
        wire
    }

    fn send(&mut self, kind: u8, body: &[u8]) {
        let mut message = vec![kind];
        message.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        message.extend_from_slice(body);
        self.socket.write_all(&message).expect("send");
    }

    fn message(&mut self) -> Message {
        loop {
            if self.buffer.len() >= 5 {
                let len = u32::from_be_bytes(self.buffer[1..5].try_into().unwrap()) as usize;
                if self.buffer.len() > len {
                    let message: Vec<u8> = self.buffer.drain(..=len).collect();
                    return (message[0], message[5..].to_vec());
                }
            }
            let mut chunk = [0u8; 4096];
            let n = self.socket.read(&mut chunk).expect("read");
            assert!(n > 0, "the server closed the connection");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads to ReadyForQuery: its status, the SQLSTATEs of the errors and the
    /// command tags on the way.
    fn until_ready(&mut self) -> (u8, Vec<String>, Vec<String>) {
        let (mut errors, mut tags) = (Vec::new(), Vec::new());
        loop {
            let (kind, body) = self.message();
            match kind {
                b'Z' => return (body[0], errors, tags),
                b'E' => errors.push(
                    body.split(|b| *b == 0)
                        .find(|f| f.first() == Some(&b'C'))
                        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned())
                        .unwrap_or_default(),
                ),
                b'C' => tags.push(String::from_utf8_lossy(&body[..body.len() - 1]).into_owned()),
                _ => {}
            }
        }
    }

    /// A simple query: (status, error codes, tags).
    fn simple(&mut self, sql: &str) -> (char, Vec<String>, Vec<String>) {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.send(b'Q', &body);
        let (status, errors, tags) = self.until_ready();
        (status as char, errors, tags)
    }

    /// Parse, Bind, Execute, Sync of `sql` (unnamed, no parameters).
    fn extended(&mut self, sql: &str) -> (char, Vec<String>, Vec<String>) {
        let mut parse = vec![0];
        parse.extend_from_slice(sql.as_bytes());
        parse.extend_from_slice(&[0, 0, 0]);
        self.send(b'P', &parse);
        self.send(b'B', &[0, 0, 0, 0, 0, 0, 0, 0]);
        self.send(b'E', &[0, 0, 0, 0, 0]);
        self.send(b'S', &[]);
        let (status, errors, tags) = self.until_ready();
        (status as char, errors, tags)
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn ready_for_query_tells_a_failed_block_over_both_protocols() {
    let server = Server::start("transactions");
    let mut wire = Wire::connect(server.port);
    let none = Vec::<String>::new();
    assert_eq!(
        wire.simple("BEGIN"),
        ('T', none.clone(), strings(&["BEGIN"]))
    );
    assert_eq!(wire.simple("SELECT * FROM nope").1, strings(&["42P01"]));
    assert_eq!(
        wire.simple("SELECT 1"),
        ('E', strings(&["25P02"]), none.clone())
    );
    // COMMIT of a failed block rolls back, and its tag says so.
    assert_eq!(
        wire.simple("COMMIT"),
        ('I', none.clone(), strings(&["ROLLBACK"]))
    );

    // ROLLBACK TO SAVEPOINT takes a failed block back to T.
    assert_eq!(wire.simple("BEGIN; SAVEPOINT s").0, 'T');
    assert_eq!(wire.simple("SELECT * FROM nope").0, 'E');
    assert_eq!(
        wire.simple("ROLLBACK TO SAVEPOINT s"),
        ('T', none.clone(), strings(&["ROLLBACK"]))
    );
    assert_eq!(
        wire.simple("SELECT 1"),
        ('T', none.clone(), strings(&["SELECT 1"]))
    );
    assert_eq!(wire.simple("COMMIT").0, 'I');

    // The same over the extended protocol.
    assert_eq!(wire.extended("BEGIN").0, 'T');
    assert_eq!(
        wire.extended("SELECT * FROM nope"),
        ('E', strings(&["42P01"]), none.clone())
    );
    assert_eq!(
        wire.extended("SELECT 1"),
        ('E', strings(&["25P02"]), none.clone())
    );
    assert_eq!(wire.extended("SAVEPOINT t").1, strings(&["25P02"]));
    assert_eq!(
        wire.extended("ROLLBACK"),
        ('I', none.clone(), strings(&["ROLLBACK"]))
    );
    assert_eq!(wire.extended("BEGIN").0, 'T');
    assert_eq!(wire.extended("SAVEPOINT t").0, 'T');
    assert_eq!(wire.extended("SELECT * FROM nope").0, 'E');
    assert_eq!(wire.extended("ROLLBACK TO SAVEPOINT t").0, 'T');
    assert_eq!(
        wire.extended("SELECT 1"),
        ('T', none.clone(), strings(&["SELECT 1"]))
    );
    assert_eq!(wire.extended("COMMIT"), ('I', none, strings(&["COMMIT"])));
    // Sync ends the unnamed portal: executing it again, unbound, is an error.
    assert_eq!(wire.extended("SELECT 1").2, strings(&["SELECT 1"]));
    wire.send(b'E', &[0, 0, 0, 0, 0]);
    wire.send(b'S', &[]);
    let (status, errors, tags) = wire.until_ready();
    assert_eq!((status, tags), (b'I', Vec::<String>::new()));
    assert_eq!(errors.len(), 1, "{errors:?}");
}
