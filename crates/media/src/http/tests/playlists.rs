//! HLS and DASH playlists, and what they give the segments of their flow.

use proptest::prelude::*;

use super::*;

const MASTER: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=1280000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\"
low/index.m3u8?token=abc
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080
http://other.example/high/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=100000,URI=\"iframe.m3u8\"
";

const MEDIA: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:100
#EXTINF:6.000,
seg-100.ts
#EXTINF:5.5,
seg-101.ts
#EXTINF:6.5,
../low/seg-102.ts?x=1
";

#[test]
fn hls_master_playlist() {
    let pl = Playlist::parse_hls(MASTER.as_bytes(), Some("cdn.example"), "/v/master.m3u8")
        .expect("a master playlist");
    assert_eq!(pl.kind, PlaylistKind::HlsMaster);
    assert_eq!(pl.template, "/v/master.m3u8");
    assert_eq!(pl.variants.len(), 2);
    let v = &pl.variants[0];
    assert_eq!(v.host.as_deref(), Some("cdn.example"));
    assert_eq!(v.template, "/v/low/index.m3u8");
    assert_eq!(
        v.rendition,
        Rendition {
            bandwidth_bps: Some(1_280_000),
            width: Some(640),
            height: Some(360)
        }
    );
    assert_eq!(v.codecs.as_deref(), Some("avc1.4d401e,mp4a.40.2"));
    assert_eq!(pl.variants[1].host.as_deref(), Some("other.example"));
    assert_eq!(pl.variants[1].template, "/high/index.m3u8");
    assert_eq!(pl.variants[1].rendition.height, Some(1080));
}

#[test]
fn hls_media_playlist() {
    let pl = Playlist::parse_hls(
        MEDIA.as_bytes(),
        Some("cdn.example"),
        "/v/low/index.m3u8?t=1",
    )
    .expect("a media playlist");
    assert_eq!(pl.kind, PlaylistKind::HlsMedia);
    assert_eq!(pl.target_duration_s, Some(6.0));
    assert_eq!(pl.media_sequence, Some(100));
    assert_eq!(pl.segments, 3);
    assert!((pl.duration_s - 18.0).abs() < 1e-9);
    assert!(pl.live);
    assert_eq!(pl.adverts.len(), 1);
    let a = &pl.adverts[0];
    assert_eq!(a.template, "/v/low/seg-{n}.ts");
    assert_eq!(a.segments, 3);
    assert!((a.duration_s - 6.0).abs() < 1e-9);
}

#[test]
fn not_a_playlist() {
    assert!(Playlist::parse_hls(b"<html></html>", None, "").is_none());
    assert!(Playlist::parse_hls(&[0xff, 0xfe, 0x00], None, "").is_none());
    assert!(Playlist::parse_dash(b"<html></html>", None, "").is_none());
    assert!(Playlist::parse_dash(b"#EXTM3U", None, "").is_none());
}

proptest! {
    #[test]
    fn playlist_parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Playlist::parse_hls(&bytes, Some("h"), "/a/b.m3u8");
        let _ = Playlist::parse_dash(&bytes, Some("h"), "/a/b.mpd");
        let mut with_header = b"#EXTM3U\n".to_vec();
        with_header.extend_from_slice(&bytes);
        let _ = Playlist::parse_hls(&with_header, Some("h"), "/a/b.m3u8");
    }

    #[test]
    fn hls_like_text_never_panics(
        lines in prop::collection::vec(
            prop::sample::select(vec![
                "#EXTINF:", "#EXTINF:4.5,", "#EXT-X-TARGETDURATION:", "#EXT-X-TARGETDURATION:99999999999999999999",
                "#EXT-X-STREAM-INF:BANDWIDTH=", "#EXT-X-STREAM-INF:RESOLUTION=1x", "seg.ts", "", "#EXT-X-ENDLIST",
                "#EXT-X-BYTERANGE:1@", "#EXT-X-KEY:METHOD=", "#EXT-X-MAP:URI=", "#EXT-X-PROGRAM-DATE-TIME:x",
            ]),
            0..30,
        )
    ) {
        let text = format!("#EXTM3U\n{}", lines.join("\n"));
        let _ = Playlist::parse_hls(text.as_bytes(), None, "/x.m3u8");
    }
}

const MPD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic" maxSegmentDuration="PT2S"
     mediaPresentationDuration="PT1M">
  <BaseURL>http://dash.example/live/</BaseURL>
  <Period id="p0" duration="PT1M">
    <AdaptationSet mimeType="video/mp4" width="1280" height="720">
      <SegmentTemplate timescale="90000" media="$RepresentationID$/$Number%05d$.m4s"
                       initialization="$RepresentationID$/init.mp4" startNumber="7">
        <SegmentTimeline>
          <S t="0" d="180000" r="2"/>
          <S d="90000"/>
        </SegmentTimeline>
      </SegmentTemplate>
      <Representation id="video_hd" bandwidth="3000000" codecs="avc1.64001f"/>
      <Representation id="video_sd" bandwidth="1000000" width="640" height="360"/>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4">
      <Representation id="audio" bandwidth="128000" codecs="mp4a.40.2">
        <SegmentTemplate timescale="48000" duration="96000" media="audio/seg-$Number$.m4s"/>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>"#;

#[test]
fn dash_mpd_with_template_and_timeline() {
    let pl = Playlist::parse_dash(MPD.as_bytes(), Some("origin.example"), "/live/manifest.mpd")
        .expect("an MPD");
    assert_eq!(pl.kind, PlaylistKind::Dash);
    assert!(pl.live);
    assert_eq!(pl.target_duration_s, Some(2.0));
    assert_eq!(pl.media_sequence, Some(7));
    assert_eq!(pl.variants.len(), 3);
    let hd = &pl.variants[0];
    assert_eq!(hd.host.as_deref(), Some("dash.example"));
    assert_eq!(hd.template, "/live/video_hd/{n}.m4s");
    assert_eq!(
        hd.rendition,
        Rendition {
            bandwidth_bps: Some(3_000_000),
            width: Some(1280),
            height: Some(720)
        }
    );
    assert_eq!(hd.codecs.as_deref(), Some("avc1.64001f"));
    assert_eq!(pl.variants[1].rendition.width, Some(640));
    // Timeline: 3 × 2 s + 1 × 1 s = 4 segments, 7 s; audio: 60 s / 2 s = 30 segments.
    assert_eq!(pl.segments, 30);
    let a = |t: &str| {
        pl.adverts
            .iter()
            .find(|a| a.template == t)
            .expect(t)
            .clone()
    };
    let hd = a("/live/video_hd/{n}.m4s");
    assert_eq!(hd.segments, 4);
    assert!((hd.duration_s - 1.75).abs() < 1e-9);
    assert_eq!(hd.rendition.and_then(|r| r.bandwidth_bps), Some(3_000_000));
    let audio = a("/live/audio/seg-{n}.m4s");
    assert_eq!(audio.segments, 30);
    assert!((audio.duration_s - 2.0).abs() < 1e-9);

    // Each timeline segment gets its own `S@d`: numbers 7 to 9 are 2 s, 10 is 1 s; a
    // number past the timeline gets the mean.
    let own = |path: &str| {
        pl.patterns
            .iter()
            .find_map(|p| p.duration_of(Some("dash.example"), path))
            .expect(path)
    };
    assert_eq!(own("/live/video_hd/00007.m4s"), 2.0);
    assert_eq!(own("/live/video_hd/00009.m4s"), 2.0);
    assert_eq!(own("/live/video_sd/00010.m4s"), 1.0);
    assert_eq!(own("/live/video_hd/00011.m4s"), 1.75);
    assert_eq!(own("/live/audio/seg-3.m4s"), 2.0);
}

/// `$Time$` numbers segments by their start (`S@t`, else the previous segment's end).
#[test]
fn dash_timeline_by_time() {
    let mpd = r#"<MPD type="static" mediaPresentationDuration="PT10S"><Period>
      <AdaptationSet><SegmentTemplate timescale="1000" media="v/$Time$.m4s">
        <SegmentTimeline><S t="5000" d="4000" r="1"/><S d="1500"/><S t="20000" d="500"/>
        </SegmentTimeline></SegmentTemplate>
        <Representation id="a" bandwidth="100"/></AdaptationSet></Period></MPD>"#;
    let pl = Playlist::parse_dash(mpd.as_bytes(), Some("h"), "/m.mpd").expect("an MPD");
    let own = |path: &str| pl.patterns[0].duration_of(Some("h"), path);
    assert_eq!(own("/v/5000.m4s"), Some(4.0));
    assert_eq!(own("/v/9000.m4s"), Some(4.0));
    assert_eq!(own("/v/13000.m4s"), Some(1.5));
    assert_eq!(own("/v/20000.m4s"), Some(0.5));
    // Not a listed start: the mean of 4 + 4 + 1.5 + 0.5 over 4.
    assert_eq!(own("/v/14000.m4s"), Some(2.5));
    assert_eq!(own("/w/5000.m4s"), None);
}

#[test]
fn hls_segments_get_duration_rendition_and_bitrate_on_the_flow() {
    let seg_body = "S".repeat(750);
    let (out, stats) = run(&[
        b(
            C,
            "GET /v/master.m3u8 HTTP/1.1\r\nHost: cdn.example\r\n\r\n",
        ),
        b(S, &ok("application/vnd.apple.mpegurl", MASTER)),
        b(
            C,
            "GET /v/low/index.m3u8?token=abc HTTP/1.1\r\nHost: cdn.example\r\n\r\n",
        ),
        b(S, &ok("application/x-mpegURL", MEDIA)),
        b(
            C,
            "GET /v/low/seg-101.ts HTTP/1.1\r\nHost: cdn.example\r\n\r\n",
        ),
        b(S, &ok("video/MP2T", &seg_body)),
    ]);
    assert_eq!(stats.playlists, 2);
    assert_eq!(stats.annotated, 1);
    let master = out.txs[0].playlist.as_deref().expect("the master playlist");
    assert_eq!(master.kind, PlaylistKind::HlsMaster);
    let media = out.txs[1].playlist.as_deref().expect("the media playlist");
    assert_eq!(media.segments, 3);
    let seg = &out.txs[2];
    assert_eq!(seg.role, Role::Segment);
    // Its own EXTINF (5.5 s), not the playlist's mean (6 s): 750 bytes in 5.5 s.
    assert_eq!(seg.duration_s, Some(5.5));
    assert_eq!(seg.bitrate_bps, Some(750.0 * 8.0 / 5.5));
    assert_eq!(seg.rendition.and_then(|r| r.bandwidth_bps), Some(1_280_000));

    // A caller's run-level index joins them across flows.
    let mut index = PlaylistIndex::new(16);
    index.insert(master);
    index.insert(media);
    let mut tx = seg.clone();
    tx.duration_s = None;
    tx.rendition = None;
    assert!(index.annotate(&mut tx));
    assert_eq!(tx.rendition.and_then(|r| r.height), Some(360));
}

#[test]
fn dash_segment_annotated_from_the_mpd() {
    let (out, _) = run(&[
        b(
            C,
            "GET /live/manifest.mpd HTTP/1.1\r\nHost: dash.example\r\n\r\n",
        ),
        b(S, &ok("application/dash+xml", MPD)),
        b(
            C,
            "GET /live/audio/seg-12.m4s HTTP/1.1\r\nHost: dash.example\r\n\r\n",
        ),
        b(S, &ok("audio/mp4", "0123456789")),
    ]);
    assert!(out.txs[0].playlist.is_some());
    assert_eq!(out.txs[1].duration_s, Some(2.0));
    assert_eq!(out.txs[1].bitrate_bps, Some(40.0));
    assert_eq!(
        out.txs[1].rendition.and_then(|r| r.bandwidth_bps),
        Some(128_000)
    );
}

#[test]
fn oversize_playlist_is_counted_not_read() {
    let config = HttpConfig {
        max_playlist_bytes: 32,
        ..HttpConfig::default()
    };
    let (out, stats) = run_with(
        config,
        &[
            b(C, &get("/a.m3u8")),
            b(S, &ok("application/vnd.apple.mpegurl", MEDIA)),
        ],
    );
    assert_eq!(stats.oversize_playlists, 1);
    assert_eq!(stats.playlists, 0);
    assert!(out.txs[0].playlist.is_none());
    assert!(out.txs[0].complete);
}

#[test]
fn index_is_bounded() {
    let mut index = PlaylistIndex::new(4);
    for dir in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
        let media = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nv1/a.ts\n";
        let pl = Playlist::parse_hls(media.as_bytes(), Some("h"), &format!("/{dir}/x.m3u8"))
            .expect("a playlist");
        index.insert(&pl);
        assert!(index.len() <= 4);
    }
    assert_eq!(index.evicted(), 6);
    assert!(index.lookup(Some("h"), "/j/v{n}/a.ts").is_some());
    assert!(index.lookup(Some("h"), "/a/v{n}/a.ts").is_none());
}

#[test]
fn panel_stream_body_goes_to_the_sink() {
    let (out, _) = run(&[
        b(
            C,
            "GET /live/someuser/somepass/1234.ts HTTP/1.1\r\nHost: panel.example\r\n\r\n",
        ),
        b(
            S,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n",
        ),
        b(S, "\x47abc"),
    ]);
    assert_eq!(out.txs[0].role, Role::PanelStream);
    assert_eq!(
        out.txs[0].path_template.as_deref(),
        Some("/live/{cred}/{cred}/{n}.ts")
    );
    assert_eq!(out.bodies, vec![(0, b"\x47abc".to_vec())]);
}

/// Representations whose ids hold digits template alike (`/dash/{n}p/seg{n}.m4s`); the
/// MPD's own pattern tells their segments apart, where the request's path is at hand.
#[test]
fn dash_representations_told_apart_by_their_media_pattern() {
    const TWO: &str = r#"<MPD type="static" mediaPresentationDuration="PT20S">
      <Period><AdaptationSet>
        <SegmentTemplate timescale="1000" duration="2000" media="$RepresentationID$/seg$Number%03d$.m4s?tok=1"/>
        <Representation id="360p" bandwidth="250000" width="640" height="360"/>
        <Representation id="720p" bandwidth="450000" width="1280" height="720"/>
      </AdaptationSet></Period></MPD>"#;
    let pl = Playlist::parse_dash(TWO.as_bytes(), Some("dash.example"), "/dash/manifest.mpd")
        .expect("an MPD");
    assert_eq!(pl.patterns.len(), 2);
    let (sd, hd) = (&pl.patterns[0], &pl.patterns[1]);
    let h = Some("dash.example");
    assert!(sd.matches(h, "/dash/360p/seg007.m4s"));
    assert!(
        sd.matches(h, "/dash/360p/seg7.m4s?tok=2"),
        "the query is not compared"
    );
    assert!(!sd.matches(h, "/dash/720p/seg007.m4s"));
    assert!(hd.matches(h, "/dash/720p/seg123.m4s"));
    assert!(!hd.matches(h, "/dash/720p/seg.m4s"), "a number is needed");
    assert!(!hd.matches(h, "/dash/720p/seg12x.m4s"));
    assert!(!hd.matches(h, "/dash/720p/seg12.m4s/more"));
    assert!(!hd.matches(Some("other.example"), "/dash/720p/seg12.m4s"));
    assert_eq!(sd.rendition.height, Some(360));
    assert_eq!(hd.rendition.bandwidth_bps, Some(450_000));
    // What a table could show of them: nothing of the URL.
    assert!(!format!("{sd:?}").contains("seg"));

    let mut index = PlaylistIndex::new(16);
    index.insert(&pl);
    let seg = |path: &str| {
        let (out, _) = run(&[
            b(
                C,
                &format!("GET {path} HTTP/1.1\r\nHost: dash.example\r\n\r\n"),
            ),
            b(S, &ok("video/mp4", "0123456789")),
        ]);
        let mut tx = out.txs[0].clone();
        tx.duration_s = None;
        tx.rendition = None;
        tx
    };
    // By template alone the two representations are one advert: no rendition.
    let mut by_template = seg("/dash/720p/seg005.m4s");
    assert!(index.annotate(&mut by_template));
    assert_eq!(by_template.duration_s, Some(2.0));
    assert_eq!(by_template.rendition, None);
    for (path, height) in [
        ("/dash/720p/seg005.m4s", 720),
        ("http://dash.example/dash/360p/seg006.m4s", 360),
    ] {
        let mut tx = seg(path);
        assert!(index.annotate_path(&mut tx, Some(path)));
        assert_eq!(tx.duration_s, Some(2.0));
        assert_eq!(tx.rendition.and_then(|r| r.height), Some(height), "{path}");
    }
}

/// HLS variants whose media playlists and segments template alike (`/hls/{n}p/...`): a
/// segment gets the rendition of the media playlist that listed it (matched on its own
/// path, with the sequence number free), not of the playlist read last; by template alone
/// it gets a duration and no rendition.
#[test]
fn hls_variants_told_apart_by_their_paths() {
    const MASTER: &str = "#EXTM3U\n\
        #EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=640x360\n360p/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720\n720p/index.m3u8\n";
    let media = |name: &str, first: u32| {
        let mut m = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for n in first..first + 3 {
            m.push_str(&format!("#EXTINF:4.0,\nseg{n}.ts?tok=ab12\n"));
        }
        Playlist::parse_hls(
            m.as_bytes(),
            Some("hls.example"),
            &format!("/hls/{name}/index.m3u8"),
        )
        .expect("a media playlist")
    };
    let master = Playlist::parse_hls(MASTER.as_bytes(), Some("hls.example"), "/hls/master.m3u8")
        .expect("a master playlist");
    // What a table could show of the variants: nothing of their paths.
    assert!(!format!("{master:?}").contains("360p/index"));
    let mut index = PlaylistIndex::new(16);
    index.insert(&master);
    index.insert(&media("360p", 100));
    index.insert(&media("720p", 200)); // read last
    let seg = |path: &str| {
        let (out, _) = run(&[
            b(
                C,
                &format!("GET {path} HTTP/1.1\r\nHost: hls.example\r\n\r\n"),
            ),
            b(S, &ok("video/mp2t", "0123456789")),
        ]);
        let mut tx = out.txs[0].clone();
        tx.duration_s = None;
        tx.rendition = None;
        tx
    };
    for (path, height) in [
        ("/hls/360p/seg101.ts?tok=ab12", 360),
        ("/hls/360p/seg104.ts", 360),
        ("/hls/720p/seg201.ts?tok=cd34", 720),
    ] {
        let mut tx = seg(path);
        assert!(index.annotate_path(&mut tx, Some(path)));
        assert_eq!(tx.duration_s, Some(4.0));
        assert_eq!(tx.rendition.and_then(|r| r.height), Some(height), "{path}");
    }
    let mut by_template = seg("/hls/360p/seg101.ts");
    assert!(index.annotate(&mut by_template));
    assert_eq!(by_template.duration_s, Some(4.0));
    assert_eq!(by_template.rendition, None, "the template names no rung");
}
