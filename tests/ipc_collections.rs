//! SharedDict and SharedList: exact results under concurrent updates from many processes,
//! the capacity error, a writer killed midway, named objects.

use std::os::unix::process::ExitStatusExt;

use greenrt::ipc::{CapacityExceeded, SharedDict, SharedList};
use greenrt::process::Process;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn concurrent_updates_from_many_processes_are_exact() {
    let _t = turn();
    let dict: SharedDict<String, u64> = SharedDict::new(64 * 1024).unwrap();
    let list: SharedList<u32> = SharedList::new(64 * 1024).unwrap();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let (dict, list) = (dict.clone(), list.clone());
            Process::spawn(move || {
                let me = std::process::id();
                for _ in 0..200 {
                    dict.update(&"total".to_string(), |n| Some(n.unwrap_or(0) + 1))
                        .unwrap();
                }
                dict.insert(&format!("pid {me}"), &u64::from(me)).unwrap();
                list.push(&me).unwrap();
            })
            .unwrap()
        })
        .collect();
    let pids: Vec<u32> = children.iter().map(Process::pid).collect();
    for c in children {
        assert!(c.join().unwrap().success());
    }
    assert_eq!(dict.get(&"total".to_string()).unwrap(), Some(800));
    assert_eq!(dict.len().unwrap(), 5);
    for pid in &pids {
        assert_eq!(
            dict.get(&format!("pid {pid}")).unwrap(),
            Some(u64::from(*pid))
        );
    }
    let mut listed = list.snapshot().unwrap();
    listed.sort_unstable();
    let mut expected = pids.clone();
    expected.sort_unstable();
    assert_eq!(listed, expected);
    assert_eq!(dict.remove(&"total".to_string()).unwrap(), Some(800));
    assert_eq!(dict.get(&"total".to_string()).unwrap(), None);
    let last = *list.snapshot().unwrap().last().unwrap();
    assert_eq!(list.pop().unwrap(), Some(last));
    assert_eq!(list.len().unwrap(), 3);
}

#[test]
fn capacity_error_changes_nothing() {
    let dict: SharedDict<u32, Vec<u8>> = SharedDict::new(256).unwrap();
    dict.insert(&1, &vec![7; 100]).unwrap();
    let err = dict.insert(&2, &vec![8; 200]).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);
    let inner = err
        .get_ref()
        .unwrap()
        .downcast_ref::<CapacityExceeded>()
        .unwrap();
    assert_eq!(inner.capacity, 256);
    assert_eq!(dict.len().unwrap(), 1);
    assert_eq!(dict.get(&1).unwrap(), Some(vec![7; 100]));
    let list: SharedList<String> = SharedList::new(64).unwrap();
    assert_eq!(
        list.push(&"x".repeat(100)).unwrap_err().kind(),
        std::io::ErrorKind::StorageFull
    );
    assert!(list.is_empty().unwrap());
}

#[test]
fn a_writer_killed_midway_leaves_the_old_contents() {
    let _t = turn();
    let dict: SharedDict<u32, String> = SharedDict::new(64 * 1024).unwrap();
    for i in 0..50 {
        dict.insert(&i, &format!("value {i}")).unwrap();
    }
    let before = dict.snapshot().unwrap();
    let child = Process::spawn({
        let dict = dict.clone();
        move || {
            use greenrt::ipc::fault::{CrashPoint, kill_self_at};
            kill_self_at(CrashPoint::CollectionMidWrite, 1);
            let _ = dict.insert(&999, &"never".to_string());
            unreachable!("the crash point was not reached");
        }
    })
    .unwrap();
    assert_eq!(child.join().unwrap().signal(), Some(9));
    // The dead writer held the lock: it is taken over, and the contents are the old ones.
    assert_eq!(dict.snapshot().unwrap(), before);
    dict.insert(&1000, &"after".to_string()).unwrap();
    assert_eq!(dict.len().unwrap(), 51);
}

#[test]
fn named_collections_are_shared_by_name() {
    let _t = turn();
    let name = format!("test-dict-{}", std::process::id());
    let dict: SharedDict<String, i32> = SharedDict::create(&name, 4096).unwrap();
    let child = Process::spawn({
        let name = name.clone();
        move || {
            let d: SharedDict<String, i32> = SharedDict::open(&name).unwrap();
            d.insert(&"child".to_string(), &-1).unwrap();
        }
    })
    .unwrap();
    assert!(child.join().unwrap().success());
    assert_eq!(dict.get(&"child".to_string()).unwrap(), Some(-1));
    assert_eq!(
        SharedList::<u8>::open(&name).unwrap_err().kind(),
        std::io::ErrorKind::InvalidData
    );
}
