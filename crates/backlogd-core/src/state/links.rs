//! The intrusive doubly linked lists of the state: the open cases of an employee and the mentees of
//! a mentor, and the two operations that move an element between lists.

use super::{Case, Employee, NONE, State};

/// Links of an intrusive doubly linked list threaded through a `Vec` by index (the open cases of an
/// employee, the mentees of a mentor): O(1) to add or remove an element, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Links {
    pub(super) prev: u32,
    pub(super) next: u32,
}

impl Links {
    pub(super) const DETACHED: Links = Links {
        prev: NONE,
        next: NONE,
    };
}

/// Removes `index` from the list starting at `head`; returns the new head.
pub(super) fn list_unlink<T>(
    items: &mut [T],
    links: fn(&mut T) -> &mut Links,
    head: u32,
    index: u32,
) -> u32 {
    let Links { prev, next } =
        std::mem::replace(links(&mut items[index as usize]), Links::DETACHED);
    if next != NONE {
        links(&mut items[next as usize]).prev = prev;
    }
    if prev != NONE {
        links(&mut items[prev as usize]).next = next;
        head
    } else {
        next
    }
}

/// Puts `index` (not in any list) at the front of the list starting at `head`; returns the new head.
pub(super) fn list_push<T>(
    items: &mut [T],
    links: fn(&mut T) -> &mut Links,
    head: u32,
    index: u32,
) -> u32 {
    *links(&mut items[index as usize]) = Links {
        prev: NONE,
        next: head,
    };
    if head != NONE {
        links(&mut items[head as usize]).prev = index;
    }
    index
}

pub(super) fn case_links(case: &mut Case) -> &mut Links {
    &mut case.of_employee
}

pub(super) fn mentee_links(employee: &mut Employee) -> &mut Links {
    &mut employee.mentees_of_mentor
}

impl State {
    /// Assigns an open case to `employee` (or to no one with `NONE`), keeping the per-employee lists.
    pub(super) fn assign(&mut self, index: u32, employee: u32) {
        let current = self.cases[index as usize].employee;
        if current == employee {
            return;
        }
        self.detach(index);
        if current != NONE {
            let head = self.employees[current as usize].first_case;
            self.employees[current as usize].first_case =
                list_unlink(&mut self.cases, case_links, head, index);
        }
        self.cases[index as usize].employee = employee;
        if employee != NONE {
            let head = self.employees[employee as usize].first_case;
            self.employees[employee as usize].first_case =
                list_push(&mut self.cases, case_links, head, index);
        }
        self.attach(index);
    }

    pub(super) fn set_mentor(&mut self, mentee: u32, mentor: u32) {
        let current = self.employees[mentee as usize].mentor;
        if current == mentor {
            return;
        }
        if current != NONE {
            let head = self.employees[current as usize].first_mentee;
            let head = list_unlink(&mut self.employees, mentee_links, head, mentee);
            let m = &mut self.employees[current as usize];
            m.first_mentee = head;
            m.mentee_count -= 1;
        }
        self.employees[mentee as usize].mentor = mentor;
        if mentor != NONE {
            let head = self.employees[mentor as usize].first_mentee;
            let head = list_push(&mut self.employees, mentee_links, head, mentee);
            let m = &mut self.employees[mentor as usize];
            m.first_mentee = head;
            m.mentee_count += 1;
        }
    }
}
