//! The sled-backed store of citizen records: citizens by personal ID, an old-ID index,
//! households, and the metadata of the generation that filled it.

use crate::generator::{Batch, GenerateError, Generator, Spec};
use crate::personas;
use lienthong_domain::{CitizenRecord, Household, HouseholdId, OldIdNumber, PersonalId};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Bumped whenever the encoding of stored records changes.
pub const FORMAT_VERSION: u32 = 3;

/// What went wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store could not be read or written: {0}")]
    Sled(#[from] sled::Error),
    #[error(
        "the record under key {key:?} in tree {tree} cannot be decoded ({detail}); regenerate the store"
    )]
    Corrupt {
        tree: &'static str,
        key: String,
        detail: String,
    },
    #[error(
        "the store holds no generated population; run `mock-csdl generate --store <path>` first"
    )]
    NotGenerated,
    #[error(
        "the store was written in format {found}, this build reads format {FORMAT_VERSION}; regenerate it"
    )]
    Format { found: u32 },
    #[error(
        "the store already holds a population (seed {seed}, {citizens} citizens); pass --force to replace it"
    )]
    NotEmpty { seed: u64, citizens: u64 },
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

/// What the store holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreMeta {
    pub format: u32,
    pub seed: u64,
    /// Generated citizens, personas excluded.
    pub generated: u64,
    /// Every record, personas included.
    pub citizens: u64,
    pub households: u64,
    pub province: Option<u16>,
}

/// The store.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    citizens: sled::Tree,
    old_ids: sled::Tree,
    households: sled::Tree,
    meta: sled::Tree,
    /// Write-back: updates by id, their ids by citizen (`personal ID ‖ id`) and by source
    /// system and request id.
    updates: sled::Tree,
    updates_by_citizen: sled::Tree,
    update_requests: sled::Tree,
    /// Bundle cases by id, and their ids by source system and request id.
    cases: sled::Tree,
    case_requests: sled::Tree,
}

/// `source system ‖ 0x00 ‖ request id`.
fn request_key(source_system: &str, request_id: &str) -> Vec<u8> {
    let mut k = source_system.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(request_id.as_bytes());
    k
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // postcard only fails on writers that run out of room; a Vec never does.
    postcard::to_stdvec(v).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(
    tree: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

impl Store {
    /// Opens (or creates) a store at a path.
    ///
    /// A lock still held by a store closing in this process (sled's flusher thread releases it
    /// a moment after the last handle is dropped) is waited for, up to two seconds.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new()
            .path(path)
            .cache_capacity(1024 * 1024 * 1024)
            .mode(sled::Mode::HighThroughput);
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if attempts < 40 && e.to_string().contains("lock") => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        };
        Self::from_db(db)
    }

    /// A store that lives in a temporary directory and vanishes when dropped.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        Ok(Self {
            citizens: db.open_tree("citizens")?,
            old_ids: db.open_tree("old_ids")?,
            households: db.open_tree("households")?,
            meta: db.open_tree("meta")?,
            updates: db.open_tree("updates")?,
            updates_by_citizen: db.open_tree("updates_by_citizen")?,
            update_requests: db.open_tree("update_requests")?,
            cases: db.open_tree("cases")?,
            case_requests: db.open_tree("case_requests")?,
            db,
        })
    }

    /// What the store holds; `NotGenerated` for an empty store, `Format` for an old one.
    pub fn meta(&self) -> Result<StoreMeta, StoreError> {
        let bytes = self.meta.get("meta")?.ok_or(StoreError::NotGenerated)?;
        let meta: StoreMeta = decode("meta", b"meta", &bytes)?;
        if meta.format != FORMAT_VERSION {
            return Err(StoreError::Format { found: meta.format });
        }
        Ok(meta)
    }

    /// One citizen by personal ID.
    pub fn citizen(&self, id: &PersonalId) -> Result<Option<CitizenRecord>, StoreError> {
        self.citizens
            .get(id.as_str())?
            .map(|b| decode("citizens", id.as_str().as_bytes(), &b))
            .transpose()
    }

    /// One citizen by old 9-digit ID number.
    pub fn citizen_by_old_id(
        &self,
        old: &OldIdNumber,
    ) -> Result<Option<CitizenRecord>, StoreError> {
        let Some(id) = self.old_ids.get(old.as_str())? else {
            return Ok(None);
        };
        let id =
            PersonalId::parse(&String::from_utf8_lossy(&id)).map_err(|e| StoreError::Corrupt {
                tree: "old_ids",
                key: old.masked(),
                detail: e.to_string(),
            })?;
        self.citizen(&id)
    }

    /// Replaces one citizen's record.
    pub fn put_citizen(&self, c: &CitizenRecord) -> Result<(), StoreError> {
        self.citizens.insert(c.personal_id.as_str(), encode(c))?;
        Ok(())
    }

    /// A fresh number, never given out twice in this store.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        Ok(self.db.generate_id()?)
    }

    /// Stores an update and indexes it.
    pub fn put_update(&self, u: &crate::updates::DataUpdate) -> Result<(), StoreError> {
        self.updates.insert(u.id.as_str(), encode(u))?;
        let mut by_citizen = u.personal_id.as_str().as_bytes().to_vec();
        by_citizen.extend_from_slice(u.id.as_bytes());
        self.updates_by_citizen
            .insert(by_citizen, u.id.as_bytes())?;
        if !u.request_id.is_empty() {
            self.update_requests.insert(
                request_key(&u.source_system, &u.request_id),
                u.id.as_bytes(),
            )?;
        }
        Ok(())
    }

    /// One update by id.
    pub fn update(&self, id: &str) -> Result<Option<crate::updates::DataUpdate>, StoreError> {
        self.updates
            .get(id)?
            .map(|b| decode("updates", id.as_bytes(), &b))
            .transpose()
    }

    /// The id of the update a source system sent with a request id.
    pub fn update_by_request(
        &self,
        source_system: &str,
        request_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .update_requests
            .get(request_key(source_system, request_id))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A citizen's updates, oldest first.
    pub fn updates_of(
        &self,
        id: &PersonalId,
    ) -> Result<Vec<crate::updates::DataUpdate>, StoreError> {
        let mut out = Vec::new();
        for kv in self.updates_by_citizen.scan_prefix(id.as_str()) {
            let (_, update_id) = kv?;
            if let Some(u) = self.update(&String::from_utf8_lossy(&update_id))? {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Stores a bundle case and indexes it by request.
    pub fn put_case(&self, c: &crate::bundles::Case) -> Result<(), StoreError> {
        self.cases.insert(c.id.as_str(), encode(c))?;
        if !c.request_id.is_empty() {
            self.case_requests.insert(
                request_key(&c.source_system, &c.request_id),
                c.id.as_bytes(),
            )?;
        }
        Ok(())
    }

    /// One bundle case by id.
    pub fn case(&self, id: &str) -> Result<Option<crate::bundles::Case>, StoreError> {
        self.cases
            .get(id)?
            .map(|b| decode("cases", id.as_bytes(), &b))
            .transpose()
    }

    /// The id of the case a source system opened with a request id.
    pub fn case_by_request(
        &self,
        source_system: &str,
        request_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .case_requests
            .get(request_key(source_system, request_id))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Replaces one household.
    pub fn put_household(&self, h: &Household) -> Result<(), StoreError> {
        self.households.insert(h.id.as_str(), encode(h))?;
        Ok(())
    }

    /// Closes a household (its last member struck off).
    pub fn remove_household(&self, id: &HouseholdId) -> Result<(), StoreError> {
        self.households.remove(id.as_str())?;
        Ok(())
    }

    /// One household by number.
    pub fn household(&self, id: &HouseholdId) -> Result<Option<Household>, StoreError> {
        self.households
            .get(id.as_str())?
            .map(|b| decode("households", id.as_str().as_bytes(), &b))
            .transpose()
    }

    /// Every citizen, in personal-ID order.
    pub fn citizens(&self) -> impl Iterator<Item = Result<CitizenRecord, StoreError>> + '_ {
        self.citizens.iter().map(|kv| {
            let (k, v) = kv?;
            decode("citizens", &k, &v)
        })
    }

    /// Every household, in number order.
    pub fn households(&self) -> impl Iterator<Item = Result<Household, StoreError>> + '_ {
        self.households.iter().map(|kv| {
            let (k, v) = kv?;
            decode("households", &k, &v)
        })
    }

    /// Writes citizens and households (replacing records with the same keys).
    pub fn write(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut citizens = sled::Batch::default();
        let mut old_ids = sled::Batch::default();
        for c in &batch.citizens {
            citizens.insert(c.personal_id.as_str(), encode(c));
            // Every number the citizen held finds them: the last and those before it.
            for old in c.old_id_number.iter().chain(&c.previous_old_id_numbers) {
                old_ids.insert(old.as_str(), c.personal_id.as_str());
            }
        }
        let mut households = sled::Batch::default();
        for h in &batch.households {
            households.insert(h.id.as_str(), encode(h));
        }
        self.citizens.apply_batch(citizens)?;
        self.old_ids.apply_batch(old_ids)?;
        self.households.apply_batch(households)?;
        Ok(())
    }

    /// Removes everything.
    pub fn clear(&self) -> Result<(), StoreError> {
        for tree in [
            &self.citizens,
            &self.old_ids,
            &self.households,
            &self.meta,
            &self.updates,
            &self.updates_by_citizen,
            &self.update_requests,
            &self.cases,
            &self.case_requests,
        ] {
            tree.clear()?;
        }
        Ok(())
    }

    /// Fills the store: the generated population, then the personas, then the metadata (written
    /// last, so that an interrupted generation leaves a store that says it is not generated).
    /// `progress` hears the number of citizens written so far.
    pub fn generate(
        &self,
        spec: Spec,
        force: bool,
        mut progress: impl FnMut(u64),
    ) -> Result<StoreMeta, StoreError> {
        match self.meta() {
            Ok(m) if !force => {
                return Err(StoreError::NotEmpty {
                    seed: m.seed,
                    citizens: m.citizens,
                });
            }
            _ => self.clear()?,
        }
        let mut citizens = 0;
        let mut households = 0;
        // Drafting (parallel, CPU) and writing (sled) overlap: the generator runs one batch ahead
        // on its own thread.
        let generator = Generator::new(spec)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let drafting = std::thread::spawn(move || {
            for batch in generator {
                if tx.send(batch).is_err() {
                    break;
                }
            }
        });
        for batch in rx {
            let batch = batch?;
            self.write(&batch)?;
            citizens += batch.citizens.len() as u64;
            households += batch.households.len() as u64;
            progress(citizens);
        }
        // The generator thread only sends; it cannot fail on its own.
        let _ = drafting.join();
        let personas = personas::batch();
        self.write(&personas)?;
        let meta = StoreMeta {
            format: FORMAT_VERSION,
            seed: spec.seed,
            generated: citizens,
            citizens: citizens + personas.citizens.len() as u64,
            households: households + personas.households.len() as u64,
            province: spec.province,
        };
        self.meta.insert("meta", encode(&meta))?;
        self.db.flush()?;
        Ok(meta)
    }

    /// Flushes everything to disk.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}
