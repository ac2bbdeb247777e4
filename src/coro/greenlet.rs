//! [`Greenlet`]: symmetric switching, as in Python's greenlet library, built on corosensei's
//! asymmetric coroutines.
//!
//! corosensei offers only *asymmetric* transfers: `resume` goes down into a coroutine,
//! `suspend` goes back up to whoever resumed it. Greenlets switch *sideways*: `g2.switch(v)`
//! inside `g1` continues `g2` directly. The bridge is a **trampoline**: the first `switch`
//! made outside any greenlet (the *root*) runs a loop, and every greenlet runs as a coroutine
//! resumed by that loop. A sideways switch is a suspend up to the loop carrying the request
//! "continue g2 with v", and the loop resumes g2:
//!
//! ```text
//!   root: gr1.switch(())                      loop: resume gr1 ------------> gr1 prints 12
//!                                                   <- Switch(gr2, ()) ----- gr2.switch(())
//!                                             loop: resume gr2 ------------> gr2 prints 56
//!                                                   <- Switch(gr1, ()) ----- gr1.switch(())
//!                                             loop: resume gr1 ------------> gr1 prints 34
//!                                                   <- Switch(gr2, ()) ----- gr2.switch(())
//!                                             loop: resume gr2 ------------> gr2 prints 78
//!                                                   <- Return(()) ---------- gr2 ends
//!                                             gr2's parent is the root: the loop returns
//!   gr1.switch(()) returns ()
//! ```
//!
//! A finished greenlet hands its return value to its *parent*: the greenlet that was running
//! when it was made (or the root). A greenlet that ends with a panic hands the panic to its
//! parent the same way, as greenlet raises an uncaught exception in the parent: the parent's
//! pending `switch` panics with it (the parent may catch it), and a panic that reaches the
//! root comes out of the root's `switch`. Each switch costs two corosensei transfers (up, then
//! down) instead of one; that is the price of symmetry on an asymmetric base.

use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::DepthGuard;
use crate::hub::DEFAULT_STACK_SIZE;
use crate::hub::park::OffHubKind;
use crate::hub::stack::{GreenStack, InChildren};

/// What a greenlet asks the trampoline when it suspends: continue that greenlet with that
/// value (or raise that panic in it, for `throw`).
struct SwitchTo<V>(Rc<Inner<V>>, Resume<V>);

/// What a greenlet is resumed with: a value, or the panic of a child that ended with one.
enum Resume<V> {
    Value(V),
    Panic(Box<dyn Any + Send>),
}

impl<V> Resume<V> {
    /// The value, or the panic raised here.
    fn into_value(self) -> V {
        match self {
            Resume::Value(value) => value,
            Resume::Panic(payload) => resume_unwind(payload),
        }
    }
}

type GreenletCoro<V> = Coroutine<Resume<V>, SwitchTo<V>, V, GreenStack>;

struct Inner<V> {
    coro: RefCell<Option<GreenletCoro<V>>>,
    /// Who gets our return value: the greenlet running when we were made; `None` = the root.
    parent: Option<Rc<Inner<V>>>,
    /// Our yielder, set when we start.
    ///
    /// # Invariant
    /// Null, or the yielder on our own stack, valid while our coroutine is unfinished.
    yielder: Cell<*const Yielder<Resume<V>, SwitchTo<V>>>,
    /// Our stack's guard region, for the overflow report.
    guard_range: (usize, usize),
}

thread_local! {
    /// The greenlet running on this thread (type-erased `*const Inner<V>`), with its `V`.
    static CURRENT: Cell<(*const (), Option<TypeId>)> = const { Cell::new((std::ptr::null(), None)) };
}

/// A greenlet: a function you switch into and out of by hand. See the module docs.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use greenrt::coro::Greenlet;
///
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let (l1, l2) = (log.clone(), log.clone());
/// let gr2: Rc<RefCell<Option<Greenlet<()>>>> = Rc::default();
/// let g2 = gr2.clone();
/// let gr1 = Greenlet::new(move |()| {
///     l1.borrow_mut().push(12);
///     g2.borrow().as_ref().unwrap().switch(());
///     l1.borrow_mut().push(34);
/// });
/// let g1 = gr1.clone();
/// *gr2.borrow_mut() = Some(Greenlet::new(move |()| {
///     l2.borrow_mut().push(56);
///     g1.switch(());
///     l2.borrow_mut().push(78); // never reached: gr1 ends and returns to the root
/// }));
/// gr1.switch(());
/// assert_eq!(*log.borrow(), [12, 56, 34]);
/// ```
pub struct Greenlet<V: 'static = ()> {
    inner: Rc<Inner<V>>,
}

impl<V: 'static> Clone for Greenlet<V> {
    fn clone(&self) -> Self {
        Greenlet {
            inner: self.inner.clone(),
        }
    }
}

impl<V: 'static> Greenlet<V> {
    /// Makes a greenlet that will run `f` when first switched to; the value of that first
    /// switch is `f`'s argument, and `f`'s return value goes to the parent.
    ///
    /// # Panics
    /// If no stack can be mapped (out of address space).
    pub fn new(f: impl FnOnce(V) -> V + 'static) -> Greenlet<V> {
        let stack = GreenStack::new(DEFAULT_STACK_SIZE, InChildren::Copied)
            .unwrap_or_else(|e| panic!("greenrt: cannot map a greenlet stack: {e}"));
        let guard_range = stack.guard_range();
        let inner = Rc::new_cyclic(|weak: &std::rc::Weak<Inner<V>>| {
            let me = weak.clone();
            let body = move |yielder: &Yielder<Resume<V>, SwitchTo<V>>, first: Resume<V>| {
                if let Some(me) = me.upgrade() {
                    me.yielder.set(yielder);
                }
                f(first.into_value())
            };
            Inner {
                coro: RefCell::new(Some(Coroutine::with_stack(stack, body))),
                parent: current::<V>(),
                yielder: Cell::new(std::ptr::null()),
                guard_range,
            }
        });
        Greenlet { inner }
    }

    /// Transfers control to this greenlet, handing it `value`: starts it, or returns `value`
    /// from the `switch` it is suspended in. Returns the value that control comes back with —
    /// from a later `switch` into the caller, or the return value of a greenlet whose parent
    /// the caller is. Switching to a finished greenlet goes to its parent.
    ///
    /// # Panics
    /// With the panic of a greenlet whose parent the caller is, if that greenlet ended with
    /// one (greenlet raises a child's uncaught exception in its parent).
    pub fn switch(&self, value: V) -> V {
        self.transfer(Resume::Value(value))
    }

    /// Switches to this greenlet and raises `payload` in it, as a panic, where it is
    /// suspended (greenlet's `throw`): a greenlet that does not catch it ends, and the panic
    /// goes on to its parent like any uncaught one. Thrown into a greenlet that has not
    /// started, it ends without running its function; thrown into the running greenlet, it
    /// panics right here.
    ///
    /// ```
    /// use std::panic::{AssertUnwindSafe, catch_unwind};
    /// use greenrt::coro::Greenlet;
    ///
    /// let main = Greenlet::new(|()| {
    ///     let worker = Greenlet::new(|()| {
    ///         let me = Greenlet::<()>::current().unwrap();
    ///         // Suspended in this switch back to `main` until `main` throws into it.
    ///         let got = catch_unwind(AssertUnwindSafe(|| me.parent().unwrap().switch(())));
    ///         assert_eq!(*got.unwrap_err().downcast::<&str>().unwrap(), "stop");
    ///     });
    ///     worker.switch(()); // the worker runs, then switches back here
    ///     worker.throw("stop"); // it catches the panic and ends: its end comes back here
    ///     assert!(worker.is_dead());
    /// });
    /// main.switch(());
    /// ```
    pub fn throw(&self, payload: impl Any + Send) -> V {
        self.transfer(Resume::Panic(Box::new(payload)))
    }

    /// The greenlet of this family running now (greenlet's `getcurrent`); `None` outside
    /// any (the root).
    pub fn current() -> Option<Greenlet<V>> {
        current::<V>().map(|inner| Greenlet { inner })
    }

    /// The greenlet this one's return value (or panic) goes to: the one running when it was
    /// made; `None` for the root.
    pub fn parent(&self) -> Option<Greenlet<V>> {
        self.inner.parent.clone().map(|inner| Greenlet { inner })
    }

    fn transfer(&self, input: Resume<V>) -> V {
        match current::<V>() {
            Some(me) if Rc::ptr_eq(&me, &self.inner) => input.into_value(),
            Some(me) => {
                let yielder = me.yielder.get();
                drop(me);
                // SAFETY: by the field's invariant the yielder is on the running greenlet's
                // stack, and we are running on that stack (it is CURRENT).
                let resumed = unsafe { (*yielder).suspend(SwitchTo(self.inner.clone(), input)) };
                resumed.into_value() // a child's panic comes out here, in its parent
            }
            None => trampoline(self.inner.clone(), input).into_value(),
        }
    }

    /// True once its function has returned.
    pub fn is_dead(&self) -> bool {
        self.inner.coro.borrow().as_ref().is_none_or(|c| c.done())
    }
}

/// The running greenlet of family `V`, if any.
fn current<V: 'static>() -> Option<Rc<Inner<V>>> {
    let (ptr, ty) = CURRENT.with(Cell::get);
    if ptr.is_null() || ty != Some(TypeId::of::<V>()) {
        return None;
    }
    let ptr = ptr as *const Inner<V>;
    // SAFETY: CURRENT holds a pointer from `Rc::as_ptr` of a greenlet of this `V` (checked by
    // TypeId) that the trampoline keeps alive while it runs.
    unsafe {
        Rc::increment_strong_count(ptr);
        Some(Rc::from_raw(ptr))
    }
}

/// The loop that runs greenlets for a root `switch`. See the module docs. Returns what
/// reaches the root: a value, or a panic no greenlet caught.
fn trampoline<V: 'static>(mut target: Rc<Inner<V>>, mut input: Resume<V>) -> Resume<V> {
    loop {
        if target.coro.borrow().as_ref().is_none_or(|c| c.done()) {
            // A finished greenlet: the value (or panic) goes on to its parent.
            match target.parent.clone() {
                Some(parent) => target = parent,
                None => return input,
            }
            continue;
        }
        let ended = match run_one(&target, input) {
            Ok(CoroutineResult::Yield(SwitchTo(next, resume))) => {
                (target, input) = (next, resume);
                continue;
            }
            Ok(CoroutineResult::Return(v)) => Resume::Value(v),
            Err(payload) => Resume::Panic(payload),
        };
        target.coro.borrow_mut().take(); // frees its stack
        match target.parent.clone() {
            Some(parent) => (target, input) = (parent, ended),
            None => return ended,
        }
    }
}

/// Resumes one greenlet with CURRENT pointing at it; `Err` with the payload if it panicked.
fn run_one<V: 'static>(
    target: &Rc<Inner<V>>,
    input: Resume<V>,
) -> Result<CoroutineResult<SwitchTo<V>, V>, Box<dyn Any + Send>> {
    let previous =
        CURRENT.with(|c| c.replace((Rc::as_ptr(target).cast(), Some(TypeId::of::<V>()))));
    let _restore = RestoreCurrent(previous);
    let _body_runs = DepthGuard::enter(OffHubKind::Greenlet, target.guard_range);
    let mut coro = target.coro.borrow_mut();
    let coro = coro.as_mut().expect("checked unfinished above");
    catch_unwind(AssertUnwindSafe(|| coro.resume(input)))
}

struct RestoreCurrent((*const (), Option<TypeId>));

impl Drop for RestoreCurrent {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl<V: 'static> fmt::Debug for Greenlet<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("dead", &self.is_dead())
            .finish()
    }
}
