//! Greenlets: switch order, values passed both ways, return to parent, dead greenlets.

mod util;

use std::cell::OnceCell;
use std::rc::Rc;

use greenrt::coro::Greenlet;
use util::{DropCounter, Log};

#[test]
fn smoke_switch_into_and_return() {
    let g = Greenlet::new(|x: i32| x * 2);
    assert_eq!(g.switch(21), 42);
    assert!(g.is_dead());
}

#[test]
fn the_classic_test1_test2_order() {
    let log = Log::default();
    let gr1_cell: Rc<OnceCell<Greenlet>> = Rc::default();
    let gr2_cell: Rc<OnceCell<Greenlet>> = Rc::default();
    let (l1, l2, c2, c1) = (log.clone(), log.clone(), gr2_cell.clone(), gr1_cell.clone());
    let gr1 = Greenlet::new(move |()| {
        l1.push("12");
        c2.get().unwrap().switch(());
        l1.push("34");
        c2.get().unwrap().switch(());
    });
    let gr2 = Greenlet::new(move |()| {
        l2.push("56");
        c1.get().unwrap().switch(());
        l2.push("78");
    });
    let _ = gr1_cell.set(gr1.clone());
    let _ = gr2_cell.set(gr2.clone());
    gr1.switch(());
    assert_eq!(log.lines(), ["12", "56", "34", "78"]);
    assert!(gr2.is_dead());
    assert!(
        !gr1.is_dead(),
        "gr1 is still suspended in its second switch"
    );
}

#[test]
fn values_flow_both_ways_and_a_finished_child_returns_to_its_parent() {
    // parent made in a greenlet: the child's return value comes back to that greenlet.
    let outer = Greenlet::new(|start: i32| {
        let child = Greenlet::new(|v: i32| v + 1); // parent: `outer`
        let from_child = child.switch(start); // child returns start + 1 to us
        from_child * 10
    });
    assert_eq!(outer.switch(4), 50);
}

#[test]
fn ping_pong_passes_values() {
    let pong_cell: Rc<OnceCell<Greenlet<u32>>> = Rc::default();
    let p = pong_cell.clone();
    let ping = Greenlet::new(move |mut n: u32| {
        let pong = p.get().unwrap();
        while n < 10 {
            n = pong.switch(n + 1); // pong adds one and switches back
        }
        n
    });
    let ping_for_pong = ping.clone();
    let pong = Greenlet::new(move |mut n: u32| {
        loop {
            n = ping_for_pong.switch(n + 1);
        }
    });
    let _ = pong_cell.set(pong);
    assert_eq!(ping.switch(0), 10);
}

#[test]
fn switching_to_a_dead_greenlet_goes_to_its_parent() {
    let g = Greenlet::new(|v: u8| v);
    assert_eq!(g.switch(1), 1);
    assert_eq!(
        g.switch(7),
        7,
        "dead greenlet: the value goes straight back to the root"
    );
}

#[test]
fn dropping_a_suspended_greenlet_unwinds_it() {
    let drops = DropCounter::default();
    let token = drops.token();
    let side = Greenlet::new(|()| ()); // finishes at once, returning to the root
    let s = side.clone();
    let g = Greenlet::new(move |()| {
        let _t = token;
        s.switch(()); // `side` ends: its parent (the root) gets control; we stay suspended
    });
    g.switch(());
    assert_eq!(drops.dropped(), 0);
    assert!(!g.is_dead());
    drop(g);
    assert_eq!(drops.dropped(), 1);
}

#[test]
fn a_childs_panic_goes_to_its_parent_which_may_catch_it() {
    let log = Log::default();
    let (lp, lc) = (log.clone(), log.clone());
    let parent = Greenlet::new(move |v: u32| {
        lp.push("parent starts");
        let lc = lc.clone();
        let child = Greenlet::new(move |_: u32| -> u32 {
            lc.push("child starts");
            panic!("child failed");
        });
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child.switch(v)));
        let msg = caught
            .unwrap_err()
            .downcast_ref::<&str>()
            .copied()
            .unwrap_or("");
        lp.push(format!("parent caught: {msg}"));
        assert!(child.is_dead());
        v + 1
    });
    assert_eq!(
        parent.switch(41),
        42,
        "the parent's handler ran and returned to the root"
    );
    assert_eq!(
        log.lines(),
        [
            "parent starts",
            "child starts",
            "parent caught: child failed"
        ]
    );
}

#[test]
fn an_uncaught_panic_goes_up_through_every_parent_to_the_root() {
    let log = Log::default();
    let l = log.clone();
    let parent = Greenlet::new(move |v: u32| {
        let child = Greenlet::new(|_: u32| -> u32 { panic!("deep failure") });
        let _guard = util::OnDrop(Box::new(move || l.push("parent unwound")));
        child.switch(v) // the child's panic is raised here and not caught
    });
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parent.switch(1)));
    let msg = out
        .unwrap_err()
        .downcast_ref::<&str>()
        .copied()
        .unwrap_or("");
    assert_eq!(msg, "deep failure");
    assert_eq!(
        log.lines(),
        ["parent unwound"],
        "the parent was not skipped"
    );
    assert!(parent.is_dead());
}

/// greenlet's `throw`: into a suspended greenlet that does not catch it, the panic ends it
/// and comes out in its parent; into one not started, it ends without running its function;
/// `current` and `parent` name the running greenlet and its parent.
#[test]
fn throw_ends_a_greenlet_and_the_panic_reaches_its_parent() {
    use greenrt::coro::Greenlet;
    use std::cell::Cell;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::rc::Rc;
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let main = Greenlet::new(move |()| {
        assert!(
            Greenlet::<()>::current().unwrap().parent().is_none(),
            "made at the root"
        );
        let worker = Greenlet::new(|()| {
            let me = Greenlet::<()>::current().unwrap();
            me.parent().unwrap().switch(()); // suspended here; the throw lands here
            unreachable!("a thrown panic does not return from switch");
        });
        worker.switch(());
        let reached = catch_unwind(AssertUnwindSafe(|| worker.throw("boom")));
        assert_eq!(*reached.unwrap_err().downcast::<&str>().unwrap(), "boom");
        assert!(worker.is_dead());
        let unstarted = Greenlet::new(move |()| r.set(true));
        let reached = catch_unwind(AssertUnwindSafe(|| unstarted.throw(7u32)));
        assert_eq!(*reached.unwrap_err().downcast::<u32>().unwrap(), 7);
        assert!(unstarted.is_dead());
    });
    main.switch(());
    assert!(
        !ran.get(),
        "a greenlet thrown into before it started must not run"
    );
    assert!(
        Greenlet::<()>::current().is_none(),
        "outside any greenlet: the root"
    );
}
