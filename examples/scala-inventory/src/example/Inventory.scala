package example

import cncf.collaborator.{ActionCall, Collaborator, Operations, Result}

/** A stock entry; a case class crosses the boundary as a JSON object. */
case class Item(sku: String, qty: Int, tags: List[String])

/**
 * A Scala 2 component: a Collaborator that owns its state (the stock) and
 * answers every ActionCall itself. Its failures carry a code of its own.
 */
@Operations(Array("add", "remove", "find", "stock", "total"))
class Inventory extends Collaborator {
  private var stock = Map.empty[String, Item]

  override def call(call: ActionCall): Result = call.operation match {
    case "add" =>
      val sku = string(call, "sku", 0)
      val qty = number(call, "qty", 1)
      val item = stock.get(sku) match {
        case Some(old) => old.copy(qty = old.qty + qty)
        case None      => Item(sku, qty, List("new"))
      }
      stock += sku -> item
      Result.success(item)
    case "remove" =>
      val sku = string(call, "sku", 0)
      val qty = number(call, "qty", 1)
      stock.get(sku) match {
        case Some(item) if item.qty >= qty =>
          stock += sku -> item.copy(qty = item.qty - qty)
          Result.success(stock(sku))
        case found =>
          val attrs = new java.util.HashMap[String, Any]()
          attrs.put("sku", sku)
          attrs.put("available", found.map(_.qty).getOrElse(0))
          Result.failure("insufficient_stock", s"only ${found.map(_.qty).getOrElse(0)} of $sku in stock", attrs)
      }
    case "find"  => Result.success(stock.get(string(call, "sku", 0))) // Option: the item or null
    case "stock" => Result.success(stock.values.toList.sortBy(_.sku))
    case "total" => Result.success(stock.values.map(_.qty.toLong).sum)
  }

  private def arg(call: ActionCall, name: String, index: Int): AnyRef =
    Option(call.argument(name)).getOrElse(call.argument(index))

  private def string(call: ActionCall, name: String, index: Int): String = String.valueOf(arg(call, name, index))

  private def number(call: ActionCall, name: String, index: Int): Int =
    Option(arg(call, name, index)).map(_.asInstanceOf[Number].intValue).getOrElse(1)
}

/** Plain Scala, no cncf API: its methods become operations through the adapter. */
object Pricing {
  def price(qty: Int, unit: BigDecimal, discount: Double = 0.0): BigDecimal =
    unit * qty * BigDecimal(1 - discount)

  def cheapest(prices: Map[String, Double]): Option[String] =
    if (prices.isEmpty) None else Some(prices.minBy(_._2)._1)
}
