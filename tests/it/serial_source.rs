//! The serial source through real pseudo-terminals: frames straddling reads,
//! an unplug and a replug without restarting the source.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use attendd::source::serial::{Framing, SerialSettings, run};
use attendd::source::{PunchSink, Received, SinkError};
use tokio::io::AsyncWriteExt;
use tokio_serial::{SerialPort, SerialStream};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Recorder(Mutex<Vec<Vec<u8>>>);

impl PunchSink for Recorder {
    async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
        self.0
            .lock()
            .unwrap()
            .extend(batch.iter().map(|r| r.payload.clone()));
        Ok(())
    }
}

impl Recorder {
    async fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                {
                    let g = self.0.lock().unwrap();
                    if g.len() >= n {
                        return g.clone();
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("only {:?} arrived", self.0.lock().unwrap()))
    }
}

/// A pseudo-terminal pair: the master end (the "device") and the slave's
/// path, which the source opens like /dev/ttyUSB0.
fn pty() -> (SerialStream, String) {
    let (master, slave) = SerialStream::pair().expect("openpty");
    let name = slave.name().expect("slave has a path");
    drop(slave);
    (master, name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_frames_and_survives_unplug_and_replug() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("ttyATTENDD");
    let (mut dev, path) = pty();
    std::os::unix::fs::symlink(&path, &link).unwrap();

    let rec = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let mut s = SerialSettings::new("serial[0]", link.to_str().unwrap(), 9600);
    s.retry_min = Duration::from_millis(50);
    let task = tokio::spawn(run(s, rec.clone(), stop.clone()));

    // A line written in pieces, then two at once.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for part in [
        &b"1043\t2025-03-04 0"[..],
        b"8:57:12\t0\t15\r\n",
        b"0217\t2025-03-04 09:04:40\t0\t1\n0C8707\r",
    ] {
        dev.write_all(part).await.unwrap();
        dev.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let got = rec.wait_for(3).await;
    assert_eq!(got[0], b"1043\t2025-03-04 08:57:12\t0\t15");
    assert_eq!(got[2], b"0C8707");

    // Unplug: the device disappears. Replug: a new device at the same path.
    drop(dev);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut dev2, path2) = pty();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&path2, &link).unwrap();
    // The source reopens on its own; keep writing until a line arrives.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            dev2.write_all(b"0000820999\r\n").await.unwrap();
            dev2.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            if rec.0.lock().unwrap().len() > 3 {
                break;
            }
        }
    })
    .await
    .expect("reading resumed after replug");
    assert_eq!(rec.0.lock().unwrap()[3], b"0000820999");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stx_etx_frames_from_a_card_module() {
    let (mut dev, path) = pty();
    let rec = Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    let mut s = SerialSettings::new("serial[1]", &path, 9600);
    s.framing = Framing::StxEtx;
    let task = tokio::spawn(run(s, rec.clone(), stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let frame = b"\x020A00BC614E99\x03";
    let mut bytes = b"\xff\x00".to_vec();
    bytes.extend_from_slice(frame);
    bytes.extend_from_slice(frame);
    for chunk in bytes.chunks(5) {
        dev.write_all(chunk).await.unwrap();
        dev.flush().await.unwrap();
    }
    let got = rec.wait_for(2).await;
    assert_eq!(got, vec![frame.to_vec(), frame.to_vec()]);
    stop.cancel();
    task.await.unwrap();
}
