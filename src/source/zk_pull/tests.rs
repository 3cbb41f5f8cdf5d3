use super::*;

#[test]
fn checksum_and_packet_match_pyzk() {
    // pyzk's first packet: CMD_CONNECT, session 0, checksum over reply
    // id USHRT_MAX - 1, sent with reply id 0: "e8 03 17 fc 00 00 00 00",
    // the bytes every capture of a pyzk connect starts with.
    let p = packet(cmd::CONNECT, 0, (USHRT_MAX - 1) as u16, &[]);
    assert_eq!(p, [0xe8, 0x03, 0x17, 0xfc, 0, 0, 0, 0]);
    // The checksum covers the previous reply id.
    let p = packet(cmd::OPTIONS_RRQ, 0x1234, 7, b"~SerialNumber\0");
    assert_eq!(u16::from_le_bytes([p[6], p[7]]), 8);
    let mut z = p.clone();
    z[2] = 0;
    z[3] = 0;
    z[6] = 7;
    assert_eq!(checksum(&z), u16::from_le_bytes([p[2], p[3]]));
}

#[test]
fn commkey_is_pyzk_make_commkey() {
    // make_commkey(0, 0, 50) = pack('BBBB', ...) of 'ZKSO' swapped and
    // xored with 50: [0x53^50, 0x4f^50, 50, 0x4b^50].
    assert_eq!(
        make_commkey(0, 0, 50),
        [0x53 ^ 50, 0x4f ^ 50, 50, 0x4b ^ 50]
    );
    assert_ne!(make_commkey(123456, 77, 50), make_commkey(123457, 77, 50));
}

#[test]
fn time_round_trips_and_is_bounded() {
    let t = NaiveDate::from_ymd_opt(2026, 11, 2)
        .unwrap()
        .and_hms_opt(8, 29, 13)
        .unwrap();
    assert_eq!(decode_time(encode_time(t)), Some(t));
    assert_eq!(decode_time(u32::MAX), None); // year 2136
}

#[test]
fn records_of_each_size() {
    let t = NaiveDate::from_ymd_opt(2026, 11, 2)
        .unwrap()
        .and_hms_opt(8, 29, 13)
        .unwrap();
    let ts = encode_time(t).to_le_bytes();
    // 40-byte record: <H24sB4sB8s
    let mut r40 = vec![0u8; 40];
    r40[0] = 3;
    r40[2..6].copy_from_slice(b"0042");
    r40[26] = 1;
    r40[27..31].copy_from_slice(&ts);
    r40[31] = 15;
    let mut d = 40u32.to_le_bytes().to_vec();
    d.extend_from_slice(&r40);
    let (recs, bad) = parse_attlog(&d, 1);
    assert!(bad.is_empty());
    assert_eq!(
        recs,
        vec![AttRecord {
            user_id: "0042".into(),
            time: t,
            status: 1,
            punch: 15
        }]
    );
    assert_eq!(
        attlog_line(&recs[0]),
        "0042\t2026-11-02 08:29:13\t1\t15\t0\t0\t0"
    );
    // 16-byte record: <I4sBB2sI
    let mut r16 = vec![0u8; 16];
    r16[..4].copy_from_slice(&7u32.to_le_bytes());
    r16[4..8].copy_from_slice(&ts);
    let mut d = 16u32.to_le_bytes().to_vec();
    d.extend_from_slice(&r16);
    assert_eq!(parse_attlog(&d, 1).0[0].user_id, "7");
    // Garbage never panics.
    for n in 0..50 {
        let _ = parse_attlog(&vec![0xff; n], 3);
        let _ = parse_users(&vec![0xff; n], 3);
    }
}

#[test]
fn cursor_skips_what_was_read_and_keeps_same_second_records() {
    let tz: Tz = "Asia/Shanghai".parse().unwrap();
    let t = |h, m, s| {
        NaiveDate::from_ymd_opt(2026, 11, 2)
            .unwrap()
            .and_hms_opt(h, m, s)
            .unwrap()
    };
    let rec = |u: &str, time| AttRecord {
        user_id: u.into(),
        time,
        status: 0,
        punch: 1,
    };
    let log = vec![
        rec("1", t(8, 0, 0)),
        rec("2", t(8, 0, 5)),
        rec("3", t(8, 0, 5)),
        rec("4", t(8, 1, 0)),
    ];
    let all = after_cursor(log.clone(), tz, &Cursor::default());
    assert_eq!(all.len(), 4);
    // Stored up to the first of the two 08:00:05 records.
    let c = Cursor {
        time: Some(all[1].1),
        count: all[1].2,
        epoch: 0,
    };
    let rest = after_cursor(log, tz, &c);
    let ids: Vec<&str> = rest.iter().map(|r| r.0.user_id.as_str()).collect();
    assert_eq!(ids, ["3", "4"]);
}

#[test]
fn a_record_far_in_the_future_does_not_move_the_cursor() {
    let tz: Tz = "Asia/Shanghai".parse().unwrap();
    let rec = |u: &str, y| AttRecord {
        user_id: u.into(),
        time: NaiveDate::from_ymd_opt(y, 11, 2)
            .unwrap()
            .and_hms_opt(8, 0, 0)
            .unwrap(),
        status: 0,
        punch: 1,
    };
    let log = vec![rec("1", 2026), rec("2", 2099)];
    let now = "2026-11-02T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let ahead = now + chrono::Duration::seconds(MAX_AHEAD_SECONDS);
    let new = after_cursor(log.clone(), tz, &Cursor::default());
    assert_eq!(new.len(), 2, "both are collected");
    let c = cursor_after(&new, &Cursor::default(), ahead);
    assert_eq!(c.time, Some(new[0].1), "the cursor stops before 2099");
    // A punch of the real present that comes later is still read.
    let mut later = log;
    later.push(AttRecord {
        user_id: "3".into(),
        time: NaiveDate::from_ymd_opt(2026, 11, 2)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap(),
        status: 0,
        punch: 1,
    });
    let ids: Vec<String> = after_cursor(later, tz, &c)
        .into_iter()
        .map(|r| r.0.user_id)
        .collect();
    assert_eq!(ids, ["3", "2"]);
    // Only future records: the cursor stays where it was.
    let only = after_cursor(vec![rec("2", 2099)], tz, &c);
    assert_eq!(cursor_after(&only, &c, ahead), c);
}
