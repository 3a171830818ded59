//! Three field devices of one station: bootstrap, a day offline, reconnect in varying
//! orders; everything converges and nothing typed is lost.
#![allow(clippy::unwrap_used)]

use doorstep_core::*;
use doorstep_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_offline_then_reconnect_in_every_order() {
    for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
        let server = TestServer::start().await;
        let station = server.station("石桥镇社工站");
        let url = server.url();
        let devs = [
            server.device(station, "W01", &url).await,
            server.device(station, "W02", &url).await,
            server.device(station, "W03", &url).await,
        ];
        // W01 opens the case files; everyone bootstraps.
        let hh: Vec<HouseholdId> = (0..4)
            .map(|i| devs[0].new_household(&format!("HH-{i:06}")))
            .collect();
        let child = devs[0]
            .store
            .add_person(hh[0], &NewPerson::named("王晓明", "孙子"))
            .unwrap();
        for d in &devs {
            d.sync().await;
        }
        assert_converged(&[&devs[0], &devs[1], &devs[2]]);

        // Offline.
        let v0 = devs[0].visit(hh[0]);
        devs[0].type_into(
            hh[0],
            v0,
            Section::FamilySituation,
            "奶奶七十二岁，腿脚不便。",
        );
        let v1 = devs[1].visit(hh[0]);
        devs[1].type_into(hh[0], v1, Section::Concerns, "孩子情绪低落，需要心理疏导。");
        devs[0].store.splice_summary(hh[0], 0, 0, "【一】").unwrap();
        let len = devs[1]
            .store
            .household(hh[0])
            .unwrap()
            .summary
            .chars()
            .count();
        devs[1]
            .store
            .splice_summary(hh[0], len, 0, "【二】")
            .unwrap();
        devs[2].store.splice_summary(hh[0], 2, 0, "【三】").unwrap();
        devs[0]
            .store
            .edit_person(hh[0], child, &PersonEdit::Name("王小明".into()))
            .unwrap();
        devs[2]
            .store
            .edit_person(hh[0], child, &PersonEdit::Name("汪晓明".into()))
            .unwrap();
        for (i, d) in devs.iter().enumerate() {
            let v = d.visit(hh[1 + i]);
            d.type_into(
                hh[1 + i],
                v,
                Section::ActualNeeds,
                &format!("设备{i}记录的需求：申请医疗救助。"),
            );
            d.store.finalise_visit(hh[1 + i], v).unwrap();
        }
        let extra = devs[2].new_household("HH-NEW001");

        // Reconnect in this order, twice round.
        for _ in 0..2 {
            for i in order {
                let r = devs[i].sync().await;
                assert_eq!(r.refused, 0);
            }
        }
        assert_converged(&[&devs[0], &devs[1], &devs[2]]);
        for d in &devs {
            assert_server_has(&server, d);
            assert!(
                d.store.unsynced_households().unwrap().is_empty(),
                "{} still has unsynced work",
                d.label
            );
        }
        // No character lost.
        let h = devs[1].store.household(hh[0]).unwrap();
        assert_eq!(
            h.summary.replace("【三】", ""),
            "【一】祖孙二人生活。【二】",
            "summary: {}",
            h.summary
        );
        assert!(
            h.summary.starts_with("【一】祖孙【三】"),
            "W03 typed at position 2: {}",
            h.summary
        );
        assert_eq!(
            devs[2].section_text(hh[0], v0, Section::FamilySituation),
            "奶奶七十二岁，腿脚不便。"
        );
        assert_eq!(
            devs[2].section_text(hh[0], v1, Section::Concerns),
            "孩子情绪低落，需要心理疏导。"
        );
        assert!(devs[0].store.household(extra).is_ok());
        assert_eq!(devs[0].store.search("申请医疗救助", 10).unwrap().len(), 3);
        // The name conflict is visible on every device, with both values.
        for d in &devs {
            let c = d.store.conflicts(None).unwrap();
            assert_eq!(c.len(), 1, "{}: {c:?}", d.label);
            let mut names: Vec<_> = c[0]
                .values
                .iter()
                .map(|v| v.value.clone().unwrap())
                .collect();
            names.sort();
            assert_eq!(names, ["汪晓明", "王小明"]);
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_trip_and_zero_bytes_for_unchanged_documents() {
    let server = TestServer::start().await;
    let station = server.station("站");
    let url = server.url();
    let a = server.device(station, "A", &url).await;
    let b = server.device(station, "B", &url).await;
    let hh: Vec<HouseholdId> = (0..50)
        .map(|i| a.new_household(&format!("HH-{i:06}")))
        .collect();
    assert_eq!(a.sync().await.round_trips, 1);
    assert_eq!(b.sync().await.round_trips, 1);
    // Nothing changed: the request and response carry no document at all.
    let req = b.store.build_sync_request(1 << 20).unwrap();
    assert!(req.push.is_empty());
    let idle = b.sync().await;
    assert_eq!(
        (
            idle.round_trips,
            idle.pulled,
            idle.snapshots,
            idle.acknowledged
        ),
        (1, 0, 0, 0)
    );
    assert!(
        idle.bytes_up < 40 && idle.bytes_down < 60,
        "idle sync moved {} up, {} down",
        idle.bytes_up,
        idle.bytes_down
    );
    // One household edited: only it travels, in one round trip each way.
    a.store
        .edit_household(
            hh[7],
            &HouseholdEdit::AddTag("household.dibao_marginal".into()),
        )
        .unwrap();
    let req = a.store.build_sync_request(1 << 20).unwrap();
    assert_eq!(req.push.len(), 1);
    assert_eq!(req.push[0].doc, hh[7]);
    let up = a.sync().await;
    assert_eq!((up.round_trips, up.acknowledged), (1, 1));
    let down = b.sync().await;
    assert_eq!((down.round_trips, down.pulled), (1, 1));
    assert!(b
        .store
        .household(hh[7])
        .unwrap()
        .tags
        .contains(&"household.dibao_marginal".to_owned()));
    assert_converged(&[&a, &b]);
}
