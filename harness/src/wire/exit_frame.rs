//! The exit frame: the slot's last word on a test, written once every process of it is
//! gone.

use super::{ProtocolError, VERSION, check_header};

/// Identifies an exit frame: "NSX" plus the version.
const EXIT_MAGIC: &[u8; 3] = b"NSX";
/// Exact size of an encoded [`ExitFrame`].
pub const EXIT_FRAME_LEN: usize = 16;

/// How a process ended, as `waitpid(2)` told its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// `exit(code)` or a return from `main`.
    Exited(i32),
    /// Killed by a signal.
    Signaled {
        /// The signal number.
        signal: i32,
        /// Whether the kernel wrote a core dump.
        core_dumped: bool,
    },
    /// Still running at its timeout; its supervisor (or slot) killed it and everything it
    /// started.
    TimedOut,
}

/// Which of a test's limits the kernel enforced, as its cgroup counted them (byte 6 of the
/// frame, one bit each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitsHit {
    /// `pids.events` counted a refused task.
    pub pids: bool,
    /// The memory controller killed a process of the test at its limit.
    pub memory: bool,
    /// The test's tree reached its CPU time limit, and the slot killed it.
    pub cpu: bool,
}

impl LimitsHit {
    fn bits(self) -> u8 {
        u8::from(self.pids) | (u8::from(self.memory) << 1) | (u8::from(self.cpu) << 2)
    }

    fn from_bits(bits: u8) -> LimitsHit {
        LimitsHit {
            pids: bits & 1 != 0,
            memory: bits & 2 != 0,
            cpu: bits & 4 != 0,
        }
    }
}

/// The supervisor's (or slot's) last word: how the test process ended and what was
/// cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitFrame {
    /// How the test process (not its init, supervisor or slot) ended.
    pub test: Termination,
    /// Processes still alive after the test process ended, killed by the supervisor (or slot) or by
    /// the kernel when the PID namespace's init exited.
    pub leaked: u32,
    /// The limits its cgroup enforced (none without a cgroup).
    pub limits: LimitsHit,
}

impl ExitFrame {
    /// How `test` ended, with nothing left behind and no limit reached: the frame of a
    /// sandbox that never started (`Exited(0)`), or of an init that died without a word.
    pub(crate) fn nothing_left(test: Termination) -> ExitFrame {
        ExitFrame {
            test,
            leaked: 0,
            limits: LimitsHit::default(),
        }
    }

    /// Encodes the frame into its fixed 16 bytes.
    pub fn encode(&self) -> [u8; EXIT_FRAME_LEN] {
        let (kind, core, value) = match self.test {
            Termination::Exited(code) => (0u8, 0u8, code),
            Termination::Signaled {
                signal,
                core_dumped,
            } => (1, u8::from(core_dumped), signal),
            Termination::TimedOut => (2, 0, 0),
        };
        let mut out = [0u8; EXIT_FRAME_LEN];
        out[..3].copy_from_slice(EXIT_MAGIC);
        out[3] = VERSION;
        out[4] = kind;
        out[5] = core;
        out[6] = self.limits.bits();
        out[8..12].copy_from_slice(&value.to_le_bytes());
        out[12..16].copy_from_slice(&self.leaked.to_le_bytes());
        out
    }

    /// Decodes a frame; `bytes` must be exactly [`EXIT_FRAME_LEN`] long.
    ///
    /// # Errors
    ///
    /// A [`ProtocolError`] naming what is wrong with the bytes.
    pub fn decode(bytes: &[u8]) -> Result<ExitFrame, ProtocolError> {
        check_header(bytes, EXIT_MAGIC, EXIT_FRAME_LEN)?;
        if bytes.len() > EXIT_FRAME_LEN {
            return Err(ProtocolError::TrailingBytes(bytes.len() - EXIT_FRAME_LEN));
        }
        let value = i32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
        let test = match bytes[4] {
            0 => Termination::Exited(value),
            1 => Termination::Signaled {
                signal: value,
                core_dumped: bytes[5] != 0,
            },
            2 => Termination::TimedOut,
            other => return Err(ProtocolError::UnknownTag(other)),
        };
        let leaked = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
        let limits = LimitsHit::from_bits(bytes[6]);
        Ok(ExitFrame {
            test,
            leaked,
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_frames_round_trip_and_reject_garbage() {
        for test in [
            Termination::Exited(0),
            Termination::Exited(-1),
            Termination::Signaled {
                signal: 11,
                core_dumped: true,
            },
            Termination::TimedOut,
        ] {
            for bits in 0..8 {
                let limits = LimitsHit::from_bits(bits);
                let frame = ExitFrame {
                    test,
                    leaked: 7,
                    limits,
                };
                assert_eq!(ExitFrame::decode(&frame.encode()), Ok(frame));
            }
        }
        let good = ExitFrame {
            test: Termination::Exited(0),
            leaked: 0,
            limits: LimitsHit::default(),
        }
        .encode();
        assert!(ExitFrame::decode(&good[..15]).is_err());
        let mut bad = good;
        bad[0] = b'X';
        assert_eq!(ExitFrame::decode(&bad), Err(ProtocolError::BadMagic));
        let mut bad = good;
        bad[4] = 9;
        assert_eq!(ExitFrame::decode(&bad), Err(ProtocolError::UnknownTag(9)));
    }
}
