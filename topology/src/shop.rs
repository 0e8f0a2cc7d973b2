//! The demo shop's fixed data: five products with their prices, stock and reviews. Read-only, so
//! every instance of a service answers the same and tests can rely on it.

use serde::Serialize;

/// The currency of every price.
pub(crate) const CURRENCY: &str = "EUR";

/// One product of the catalog.
#[derive(Debug)]
pub(crate) struct Product {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) category: &'static str,
    /// What `pricing` answers.
    pub(crate) unit_price_cents: i64,
    /// What `inventory` answers; `1003` is out of stock on purpose.
    pub(crate) stock: u32,
    /// What `reviews` answers.
    pub(crate) reviews: &'static [Review],
}

/// One review of a product.
#[derive(Debug, Serialize)]
pub(crate) struct Review {
    pub(crate) author: &'static str,
    pub(crate) rating: u8,
    pub(crate) text: &'static str,
}

/// The catalog.
pub(crate) static PRODUCTS: [Product; 5] = [
    Product {
        id: "1001",
        name: "Espresso machine",
        description: "Dual-boiler espresso machine with a PID controller.",
        category: "machines",
        unit_price_cents: 89_900,
        stock: 12,
        reviews: &[
            Review {
                author: "alice",
                rating: 5,
                text: "Best shot I have pulled at home.",
            },
            Review {
                author: "bob",
                rating: 4,
                text: "Great, but takes a while to heat up.",
            },
        ],
    },
    Product {
        id: "1002",
        name: "Burr grinder",
        description: "Flat-burr grinder with stepless adjustment.",
        category: "grinders",
        unit_price_cents: 34_900,
        stock: 4,
        reviews: &[Review {
            author: "carol",
            rating: 5,
            text: "Consistent grind, low retention.",
        }],
    },
    Product {
        id: "1003",
        name: "Milk frother",
        description: "Induction milk frother, hot and cold foam.",
        category: "accessories",
        unit_price_cents: 7_900,
        stock: 0,
        reviews: &[],
    },
    Product {
        id: "1004",
        name: "Pour-over kettle",
        description: "Gooseneck kettle with temperature hold.",
        category: "accessories",
        unit_price_cents: 5_900,
        stock: 30,
        reviews: &[Review {
            author: "dave",
            rating: 3,
            text: "Fine kettle, loud click.",
        }],
    },
    Product {
        id: "1005",
        name: "House blend, 1 kg",
        description: "Medium roast, chocolate and hazelnut.",
        category: "coffee",
        unit_price_cents: 2_400,
        stock: 250,
        reviews: &[
            Review {
                author: "alice",
                rating: 4,
                text: "Easy to dial in.",
            },
            Review {
                author: "erin",
                rating: 5,
                text: "Our office's daily driver.",
            },
        ],
    },
];

/// The product with this id.
pub(crate) fn product(id: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.id == id)
}
