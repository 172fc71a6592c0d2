//! The real radio: on a machine without Bluetooth (this one, and CI),
//! opening it is a clear error, never a hang or a panic; where an adapter
//! exists, it opens with the adapter's own address.

use peat_mesh_ble::{BleError, BtleCentral, Radio};

#[tokio::test]
async fn opening_the_radio_names_what_is_missing() {
    match BtleCentral::open(None).await {
        Ok(radio) => assert_ne!(radio.addr(), [0; 6], "an adapter's address"),
        Err(e) => {
            assert!(
                matches!(
                    e,
                    BleError::Unavailable(_)
                        | BleError::NoAdapter(_)
                        | BleError::AdapterNotReady(_)
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("Bluetooth"), "{e}");
            eprintln!("as expected on a machine without Bluetooth: {e}");
        }
    }
    let named = BtleCentral::open(Some("no-such-adapter")).await;
    assert!(named.is_err());
}
